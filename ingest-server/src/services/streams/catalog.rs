//! The persisted catalog: one SQLite row per stream (its metadata as JSON), plus the
//! iterator key and account settings. Every change is committed before the operation
//! answers (synchronous=FULL), so an acknowledged CreateStream or SplitShard survives a
//! crash like an acknowledged record does.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::state::Stream;

/// The account-level settings (UpdateAccountSettings).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct AccountSettings {
    pub(super) commitment_enabled: bool,
    pub(super) started_ms: Option<i64>,
    pub(super) ended_ms: Option<i64>,
    pub(super) earliest_end_ms: Option<i64>,
}

/// The SQLite catalog.
pub(super) struct Catalog {
    db: Connection,
}

impl Catalog {
    /// Opens or creates the catalog file.
    pub(super) fn open(path: &Path) -> anyhow::Result<Self> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS streams (name TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
        )?;
        Ok(Self { db })
    }

    /// Every stream, as last saved.
    pub(super) fn load_streams(&self) -> anyhow::Result<Vec<Stream>> {
        let mut stmt = self
            .db
            .prepare("SELECT name, body FROM streams ORDER BY name")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut streams = Vec::new();
        for row in rows {
            let (name, body) = row?;
            let stream: Stream = serde_json::from_str(&body).map_err(|e| {
                anyhow::anyhow!("catalog entry of stream {name} is unreadable: {e}")
            })?;
            streams.push(stream);
        }
        Ok(streams)
    }

    /// Saves (inserts or replaces) a stream.
    pub(super) fn save_stream(&self, stream: &Stream) -> anyhow::Result<()> {
        let body = serde_json::to_string(stream)?;
        self.db.execute(
            "INSERT INTO streams (name, body) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET body = excluded.body",
            params![stream.name, body],
        )?;
        Ok(())
    }

    /// Forgets a stream.
    pub(super) fn delete_stream(&self, name: &str) -> anyhow::Result<()> {
        self.db
            .execute("DELETE FROM streams WHERE name = ?1", params![name])?;
        Ok(())
    }

    fn meta(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .db
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional()?)
    }

    fn set_meta(&self, key: &str, value: &[u8]) -> anyhow::Result<()> {
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// The key shard iterators are signed with, created on first use.
    pub(super) fn iterator_key(&self) -> anyhow::Result<[u8; 32]> {
        if let Some(bytes) = self.meta("iterator_key")?
            && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
        {
            return Ok(key);
        }
        let key: [u8; 32] = rand::random();
        self.set_meta("iterator_key", &key)?;
        Ok(key)
    }

    /// The account settings.
    pub(super) fn account_settings(&self) -> anyhow::Result<AccountSettings> {
        Ok(match self.meta("account")? {
            Some(bytes) => serde_json::from_slice(&bytes)?,
            None => AccountSettings::default(),
        })
    }

    /// Saves the account settings.
    pub(super) fn save_account_settings(&self, settings: &AccountSettings) -> anyhow::Result<()> {
        self.set_meta("account", &serde_json::to_vec(settings)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterator_key_is_stable_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        let a = Catalog::open(&path).unwrap().iterator_key().unwrap();
        let b = Catalog::open(&path).unwrap().iterator_key().unwrap();
        assert_eq!(a, b);
    }
}
