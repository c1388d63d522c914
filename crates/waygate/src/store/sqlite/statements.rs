//! The statements the writer runs for nearly every send, prepared once and held.
//!
//! rusqlite's `prepare_cached` hashes the SQL text, copies it into a new key and moves the
//! entry in an LRU list on every use: a thousand and more instructions a statement, a tenth
//! of the writer's (bench/instructions). These are found by the address of their `'static`
//! text among a handful, and lent out.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use rusqlite::{Connection, Statement};

use crate::store::StoreResult;

pub struct Statements<'c> {
    conn: &'c Connection,
    /// Statements not lent out, by the address of their text.
    idle: RefCell<Vec<(usize, Statement<'c>)>>,
}

impl<'c> Statements<'c> {
    pub fn new(conn: &'c Connection) -> Statements<'c> {
        Statements {
            conn,
            idle: RefCell::new(Vec::new()),
        }
    }

    /// The statement for `sql`, prepared on first use. A statement already lent out (a
    /// nested use) is prepared again, and that copy dropped when given back.
    pub fn get(&self, sql: &'static str) -> StoreResult<Held<'_, 'c>> {
        let key = sql.as_ptr() as usize;
        let found = {
            let mut idle = self.idle.borrow_mut();
            let at = idle.iter().position(|(k, _)| *k == key);
            at.map(|at| idle.swap_remove(at).1)
        };
        let statement = match found {
            Some(statement) => statement,
            None => self.conn.prepare(sql)?,
        };
        Ok(Held {
            home: self,
            key,
            statement: Some(statement),
        })
    }
}

/// A statement lent out; given back when dropped.
pub struct Held<'s, 'c> {
    home: &'s Statements<'c>,
    key: usize,
    statement: Option<Statement<'c>>,
}

impl<'c> Deref for Held<'_, 'c> {
    type Target = Statement<'c>;

    fn deref(&self) -> &Statement<'c> {
        self.statement.as_ref().expect("held until dropped")
    }
}

impl<'c> DerefMut for Held<'_, 'c> {
    fn deref_mut(&mut self) -> &mut Statement<'c> {
        self.statement.as_mut().expect("held until dropped")
    }
}

impl Drop for Held<'_, '_> {
    fn drop(&mut self) {
        let Some(statement) = self.statement.take() else {
            return;
        };
        let mut idle = self.home.idle.borrow_mut();
        if idle.iter().all(|(k, _)| *k != self.key) {
            idle.push((self.key, statement));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNT: &str = "SELECT count(*) FROM t WHERE v = ?1";

    #[test]
    fn a_statement_is_prepared_once_and_a_nested_use_gets_its_own() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (1), (2);")
            .unwrap();
        let statements = Statements::new(&conn);
        let count = |v: i64| -> i64 {
            statements
                .get(COUNT)
                .unwrap()
                .query_row([v], |r| r.get(0))
                .unwrap()
        };
        assert_eq!((count(1), count(2)), (2, 1));
        assert_eq!(statements.idle.borrow().len(), 1, "one statement, reused");
        {
            let mut outer = statements.get(COUNT).unwrap();
            assert_eq!(count(1), 2, "a nested use prepares its own");
            let n: i64 = outer.query_row([2], |r| r.get(0)).unwrap();
            assert_eq!(n, 1);
        }
        assert_eq!(statements.idle.borrow().len(), 1, "the copy was dropped");
    }
}
