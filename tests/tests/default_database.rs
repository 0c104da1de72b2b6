//! With no `databases.bandits.url`, the plugin creates its SQLite file in the working
//! directory. Alone in its test binary because it changes the working directory, which
//! every thread of a process shares.

use bandits::database::StorePool;
use rocket::figment::Figment;
use rocket_db_pools::Pool;

#[tokio::test]
async fn without_a_url_an_sqlite_file_is_created_in_the_working_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::env::set_current_dir(dir.path()).expect("cd into it");
    let pool = StorePool::init(&Figment::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(dir.path().join("bandits.sqlite").exists());
    assert_eq!(pool.store().config_version().await.ok(), Some(0));
    pool.close().await;
}
