//! `serve --demo`: a ready-to-use tenant on an empty database.

use serde_json::{json, Map, Value};

use crate::service::{ServiceError, Services};

pub struct Demo {
    pub api_key: String,
    pub sender_id: i64,
    pub template_id: i64,
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Seeds the demo tenant; `None` when the database already has users.
pub async fn seed(services: &Services) -> Result<Option<Demo>, ServiceError> {
    if services.store.has_users().await? {
        return Ok(None);
    }
    let user = services
        .create_user(&object(
            json!({ "name": "Demo Company", "email": "demo@example.com" }),
        ))
        .await?;
    let key = services
        .create_api_key(user.id, &object(json!({ "name": "demo" })))
        .await?;
    let sender = services
        .create_sender(
            user.id,
            &object(json!({ "phone_number": "+14155550100", "display_name": "Demo Store", "messaging_limit": 1000 })),
        )
        .await?;
    services
        .create_sender(
            user.id,
            &object(json!({ "phone_number": "+442071838750", "display_name": "Demo Support UK" })),
        )
        .await?;
    let templates = [
        json!({ "name": "welcome", "language": "en", "category": "marketing",
                "body_text": "Welcome to Demo Store! Reply to this message to chat with us." }),
        json!({ "name": "order_update", "language": "en", "category": "utility",
                "body_text": "Hi {{1}}, your order {{2}} will arrive on {{3}}." }),
        json!({ "name": "appointment_reminder", "language": "en", "category": "utility",
                "body_text": "Hello {{1}}, this is a reminder of your appointment on {{2}}.",
                "variables": ["customer_name", "date"] }),
        json!({ "name": "spring_sale", "language": "en", "category": "marketing",
                "body_text": "Our spring sale starts {{1}}!", "status": "pending" }),
    ];
    let mut first_with_variables = None;
    for template in templates {
        let created = services
            .create_template(sender.id, &object(template))
            .await?;
        if created.variables.len() == 3 {
            first_with_variables = Some(created.id);
        }
    }
    services
        .credit(
            user.id,
            &object(json!({ "amount": 100, "reference": "demo-seed" })),
        )
        .await?;
    Ok(Some(Demo {
        api_key: key.key,
        sender_id: sender.id,
        template_id: first_with_variables.unwrap_or_default(),
    }))
}
