//! A fresh PostgreSQL database per test, on the server `GOALS_TEST_DATABASE_URL`
//! names, dropped when the test ends. Without that variable the tests that need
//! one say they are skipped; under `GOALS_E2E_REQUIRE_ALL` (CI) they fail.

use std::sync::atomic::{AtomicUsize, Ordering};

pub const URL_ENV: &str = "GOALS_TEST_DATABASE_URL";

pub struct TestDatabase {
    /// The server's own database, where this one is created and dropped.
    admin_url: String,
    name: String,
    /// This test's database.
    pub url: String,
}

impl TestDatabase {
    /// A new, empty database for `test`, or `None` (after saying so) when no
    /// server is configured.
    pub async fn create(test: &str) -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var(URL_ENV) else {
            assert!(
                std::env::var_os("GOALS_E2E_REQUIRE_ALL").is_none(),
                "GOALS_E2E_REQUIRE_ALL is set, but {URL_ENV} is not"
            );
            eprintln!("skipped: {test} needs PostgreSQL; set {URL_ENV}=postgres://…");
            return None;
        };
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "goals_test_{}_{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst),
            fastrand_suffix()
        );
        let client = connect(&admin_url).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("create the test database {name}: {e}"));
        let mut url = url::Url::parse(&admin_url).expect("a postgres:// URL");
        url.set_path(&format!("/{name}"));
        Some(TestDatabase {
            admin_url,
            name,
            url: url.to_string(),
        })
    }
}

/// Tells two runs of the same process id apart (a rerun after a crash).
fn fastrand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {URL_ENV}: {e}"));
    tokio::spawn(connection);
    client
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // A runtime of its own: the test's may be shutting down, and a drop
        // cannot await.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let client = connect(&admin_url).await;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("the test database {} was not dropped", self.name);
        }
    }
}
