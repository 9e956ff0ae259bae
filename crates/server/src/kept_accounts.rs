//! Accounts on one node, kept in the embedded store: the `chat_core::AccountKeeper`
//! that `accounts.rs` writes through when the server has a data directory (a
//! cluster's nodes keep them in Redis instead: `chat_cluster`).
//!
//! Every call only queues a write ([`Store::submit`] never blocks); an account or a
//! new password is reported done once the store committed it. A password change and
//! the end of the account's tokens go in one queue, in that order, so no commit can
//! hold the new password with the old tokens still valid after the client was told.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chat_core::{AccountKeeper, AccountRecord, KeepDone, KeepError, TokenRecord};
use chat_store::{Account, Session, Store, Write};

/// See the module doc.
pub(crate) struct StoreAccounts {
    store: Arc<Store>,
}

impl StoreAccounts {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        StoreAccounts { store }
    }
}

/// The store's answer as a keeper's: a store has no other node to lose a race to.
fn told(done: KeepDone) -> chat_store::Done {
    Box::new(move |result| done(result.map_err(|_| KeepError::Failed)))
}

impl AccountKeeper for StoreAccounts {
    fn failing(&self) -> bool {
        self.store.health().failing.load(Ordering::Relaxed)
    }

    fn create_account(&self, account: AccountRecord, done: KeepDone) {
        let account = Account {
            key: account.key,
            name: account.name,
            password_hash: account.password_hash,
            created_ms: account.created_ms,
        };
        self.store
            .submit(Write::CreateAccount(account), Some(told(done)));
    }

    fn set_password(&self, key: &str, password_hash: &str, done: KeepDone) {
        let write = Write::SetPassword {
            key: key.to_owned(),
            password_hash: password_hash.to_owned(),
        };
        self.store.submit(write, Some(told(done)));
        self.store.submit(
            Write::DeleteSessionsOf {
                key: key.to_owned(),
            },
            None,
        );
    }

    fn add_token(&self, token: TokenRecord) {
        let session = Session {
            token_hash: token.token_hash,
            key: token.key,
            expires_ms: token.expires_ms,
        };
        self.store.submit(Write::CreateSession(session), None);
    }

    fn forget_token(&self, token_hash: &str) {
        self.store.submit(
            Write::DeleteSession {
                token_hash: token_hash.to_owned(),
            },
            None,
        );
    }
}

/// The accounts a store kept, for [`crate::accounts::Accounts::new`] at start.
pub(crate) fn kept_accounts(accounts: Vec<Account>) -> Vec<AccountRecord> {
    accounts
        .into_iter()
        .map(|a| AccountRecord {
            key: a.key,
            name: a.name,
            password_hash: a.password_hash,
            created_ms: a.created_ms,
        })
        .collect()
}

/// The login tokens a store kept, likewise.
pub(crate) fn kept_tokens(sessions: Vec<Session>) -> Vec<TokenRecord> {
    sessions
        .into_iter()
        .map(|s| TokenRecord {
            token_hash: s.token_hash,
            key: s.key,
            expires_ms: s.expires_ms,
        })
        .collect()
}
