//! What several test files share.

#![allow(dead_code, clippy::unwrap_used)]

use sqlx::Connection;

/// Every backend to run each test on: SQLite always, PostgreSQL when
/// `MESH_TEST_POSTGRES_URL` names a server (`.ci/run` starts one), with a
/// fresh database per test.
pub async fn backends() -> Vec<(tempfile::TempDir, String)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("ledger.db").to_string_lossy().into_owned();
    let mut out = vec![(dir, sqlite)];
    if let Ok(admin) = std::env::var("MESH_TEST_POSTGRES_URL") {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "mesh_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(b, _)| b)
            .to_owned();
        out.push((tempfile::tempdir().unwrap(), format!("{base}/{name}")));
    }
    out
}
