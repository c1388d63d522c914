-- Version 13: Meta's WhatsApp Cloud API as a provider.
-- The provider id of the message an inbound message replies to (Meta's context.id).
ALTER TABLE messages ADD COLUMN reply_to_sid TEXT;
-- Meta's template status pushes name the template by its Meta id.
CREATE INDEX IF NOT EXISTS templates_provider_ref ON templates(provider_ref) WHERE provider_ref IS NOT NULL;
