//! Why a store operation failed.

/// Why a store operation failed. Nothing is changed when an operation fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The pool is neither SQLite nor PostgreSQL.
    #[error("rocket-bandits stores to SQLite or PostgreSQL, not {0}")]
    UnsupportedBackend(String),
    /// No flag has this name.
    #[error("no flag named {0:?}")]
    NotFound(String),
    /// A flag with this name exists already.
    #[error("a flag named {0:?} already exists")]
    AlreadyExists(String),
    /// The flag has no arm with this name.
    #[error("flag {flag:?} has no arm named {arm:?}")]
    UnknownArm {
        /// The flag.
        flag: String,
        /// The arm asked for.
        arm: String,
    },
    /// An import leaves out an arm the stored flag has, which would delete its counts.
    #[error("flag {flag:?} leaves out its arm {arm:?}, which would delete that arm's counts")]
    ArmLeftOut {
        /// The flag.
        flag: String,
        /// The arm left out.
        arm: String,
    },
    /// A stored definition no longer validates (edited by hand in the database?).
    #[error("the stored definition of flag {name:?} is invalid: {reason}")]
    Corrupt {
        /// The flag.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No partner has this uid.
    #[error("no partner with uid {0:?}")]
    NoPartner(String),
    /// No subscription has this id.
    #[error("no subscription {0}")]
    NoSubscription(i64),
    /// The partner has this subscription (trigger and callback URL) already.
    #[error("partner {partner:?} is subscribed to {trigger:?} with this callback URL already")]
    SubscriptionExists {
        /// The partner's uid.
        partner: String,
        /// The trigger.
        trigger: String,
    },
    /// The database was migrated by a newer rocket-bandits.
    #[error(
        "the database holds schema version {found}, newer than this rocket-bandits \
         supports ({supported}): upgrade rocket-bandits"
    )]
    NewerSchema {
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
}
