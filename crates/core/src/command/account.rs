//! The `accounts` extension (docs/PROTOCOL.md §7.2): `/register PASSWORD`, `/login NAME
//! PASSWORD`, `/logout`, `/password OLD NEW`.
//!
//! Only for a client that opted in (its hello named `accounts`) on a server whose
//! broker keeps accounts. The rules are here; the backend ([`AccountBackend`]) only
//! says taken or not, right or wrong, too often or not, and does the slow part
//! (hashing, keeping). A registered name is then the account's: `/name` refuses it
//! (and its look-alikes) to anyone not logged in as it (`name.rs`), and `/login`
//! gives it back on a later connection. `/logout` while holding it gives the client
//! its default name back, since a guest may not keep it.
//!
//! With `resume` in force too, a login or registration (and a password change) is
//! followed by `SCSession`: a token the client may keep (a web page, across reloads)
//! to log in again with `CSResume` instead of the password. `/logout` makes the
//! connection's token useless; a password change makes every token of the account
//! useless (the backend's part) and hands a new one to the client that changed it.

use chat_proto::Response;

use crate::accounts::{MAX_PASSWORD_BYTES, MAX_TOKEN_BYTES, check_password};
use crate::broker::{AccountBackend, BrokerError, Reply};
use crate::encoded::Encoded;
use crate::features::{ACCOUNTS, RESUME};
use crate::mailbox::Mailbox;
use crate::state::{Awaiting, ClientState, Outcome, Turn};
use crate::{texts, validate};

use super::name;

/// The accounts, if this client may use them; else it is told why not.
pub(super) fn backend<'a, M: Mailbox>(
    client: &ClientState,
    turn: &mut Turn<'a, M>,
) -> Option<&'a dyn AccountBackend<M>> {
    let refusal = if !client.features.has(ACCOUNTS) {
        texts::ACCOUNTS_NOT_ENABLED
    } else if let Some(accounts) = turn.broker.accounts() {
        return Some(accounts);
    } else {
        texts::ACCOUNTS_UNAVAILABLE
    };
    client.system(turn, refusal);
    None
}

/// What an account operation's failure is told as.
fn failure_text(error: BrokerError) -> &'static str {
    match error {
        BrokerError::NameTaken => texts::ALREADY_REGISTERED,
        BrokerError::BadCredentials => texts::BAD_CREDENTIALS,
        BrokerError::Throttled => texts::TOO_MANY_ATTEMPTS,
        _ => texts::UNAVAILABLE,
    }
}

pub(super) fn register<M: Mailbox>(
    client: &mut ClientState,
    password: &str,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let Some(accounts) = backend(client, turn) else {
        return Outcome::Continue;
    };
    let refusal = if client.account.is_some() {
        Some(texts::REGISTER_WHILE_LOGGED_IN)
    } else if client.name == client.default_name {
        Some(texts::REGISTER_NEEDS_NAME)
    } else {
        check_password(password)
    };
    if let Some(refusal) = refusal {
        client.system(turn, refusal);
        return Outcome::Continue;
    }
    let key = validate::name_key(&client.name);
    match accounts.register(client.member(turn.mailbox), &key, password) {
        Reply::Done(outcome) => registered(client, key, outcome, turn),
        Reply::Pending => client.wait(Awaiting::Register { key }),
    }
}

/// The registration of the client's name (key `key`) came back.
pub(super) fn registered<M: Mailbox>(
    client: &mut ClientState,
    key: String,
    outcome: Result<(), BrokerError>,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    match outcome {
        Ok(()) => {
            client.account = Some(key.clone());
            client.system(turn, &texts::registered(&client.name));
            hand_token(client, &key, turn);
        }
        Err(error) => client.system(turn, failure_text(error)),
    }
    Outcome::Continue
}

pub(super) fn login<M: Mailbox>(
    client: &mut ClientState,
    name: &str,
    password: &str,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let Some(accounts) = backend(client, turn) else {
        return Outcome::Continue;
    };
    if password.len() > MAX_PASSWORD_BYTES {
        client.system(turn, texts::PASSWORD_TOO_LONG);
        return Outcome::Continue;
    }
    // A name that could never be registered is looked up like any other (the same
    // answer, the same time): its key simply has no account.
    let name = validate::check_name(name).unwrap_or_else(|_| name.to_owned());
    let key = validate::name_key(&name);
    match accounts.login(client.member(turn.mailbox), &key, password) {
        Reply::Done(outcome) => logged_in(client, key, outcome, turn),
        Reply::Pending => client.wait(Awaiting::Login { key }),
    }
}

/// The login as the account `key` came back: the client is logged in, then takes
/// the account's name (which may wait for the broker).
pub(super) fn logged_in<M: Mailbox>(
    client: &mut ClientState,
    key: String,
    outcome: Result<(), BrokerError>,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    if let Err(error) = outcome {
        client.system(turn, failure_text(error));
        return Outcome::Continue;
    }
    take_account(client, key, true, turn)
}

/// `CSResume NAME TOKEN` (the `resume` extension): `/login` with a token an earlier
/// login handed out.
pub(super) fn resume<M: Mailbox>(
    client: &mut ClientState,
    name: &str,
    token: &str,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    if !client.features.has(RESUME) {
        client.system(turn, texts::RESUME_NOT_ENABLED);
        return Outcome::Continue;
    }
    let Some(accounts) = backend(client, turn) else {
        return Outcome::Continue;
    };
    if client.account.is_some() {
        client.system(turn, texts::REGISTER_WHILE_LOGGED_IN);
        return Outcome::Continue;
    }
    if token.len() > MAX_TOKEN_BYTES {
        client.system(turn, texts::RESUME_FAILED);
        return Outcome::Continue;
    }
    let name = validate::check_name(name).unwrap_or_else(|_| name.to_owned());
    let key = validate::name_key(&name);
    match accounts.resume(client.member(turn.mailbox), &key, token) {
        Reply::Done(outcome) => resumed(client, key, token.to_owned(), outcome, turn),
        Reply::Pending => client.wait(Awaiting::Resume {
            key,
            token: token.to_owned(),
        }),
    }
}

/// The resume as the account `key` with `token` came back.
pub(super) fn resumed<M: Mailbox>(
    client: &mut ClientState,
    key: String,
    token: String,
    outcome: Result<(), BrokerError>,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    match outcome {
        Ok(()) => {
            client.token = Some(token);
            take_account(client, key, false, turn)
        }
        Err(BrokerError::BadCredentials) => {
            client.system(turn, texts::RESUME_FAILED);
            Outcome::Continue
        }
        Err(error) => {
            client.system(turn, failure_text(error));
            Outcome::Continue
        }
    }
}

/// The client is logged in as the account `key`: it is told so (and handed a token,
/// if `fresh` and it asked for `resume`), then takes the account's name.
fn take_account<M: Mailbox>(
    client: &mut ClientState,
    key: String,
    fresh: bool,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let registered = turn
        .broker
        .accounts()
        .and_then(|accounts| accounts.registered_name(&key));
    client.account = Some(key.clone());
    let Some(registered) = registered else {
        // Deleted meanwhile: nothing to take.
        return Outcome::Continue;
    };
    client.system(turn, &texts::logged_in(&registered));
    if fresh {
        hand_token(client, &key, turn);
    }
    if client.name == registered {
        return Outcome::Continue;
    }
    name::apply(client, registered, turn)
}

/// Sends `SCSession` with a new token for the account `key`, if the client asked
/// for `resume`; the connection's earlier token, if any, stops working.
fn hand_token<M: Mailbox>(client: &mut ClientState, key: &str, turn: &mut Turn<'_, M>) {
    if !client.features.has(RESUME) || client.unreachable {
        return;
    }
    let Some(accounts) = turn.broker.accounts() else {
        return;
    };
    let Some((token, expires)) = accounts.issue_token(client.member(turn.mailbox), key) else {
        return;
    };
    let session = Response::Session {
        token: token.as_str().into(),
        expires: i64::try_from(expires).unwrap_or(i64::MAX),
    };
    // A token is short: it always fits a frame.
    if let Ok(encoded) = Encoded::one(client.format, &session) {
        turn.out.send(turn.mailbox, client.format, &encoded);
    }
    if let Some(old) = client.token.replace(token) {
        accounts.forget_token(&old);
    }
}

pub(super) fn logout<M: Mailbox>(client: &mut ClientState, turn: &mut Turn<'_, M>) -> Outcome {
    let Some(accounts) = backend(client, turn) else {
        return Outcome::Continue;
    };
    if client.account.is_none() {
        client.system(turn, texts::NOT_LOGGED_IN);
        return Outcome::Continue;
    }
    let token = client.token.take();
    match accounts.log_out(client.member(turn.mailbox), token.as_deref()) {
        // Whether or not the token could be forgotten everywhere (a failing store
        // is logged where it fails), the client is logged out here.
        Reply::Done(_) => logged_out(client, turn),
        Reply::Pending => client.wait(Awaiting::Logout),
    }
}

/// The logout's token stopped working: the client is a guest again.
pub(super) fn logged_out<M: Mailbox>(client: &mut ClientState, turn: &mut Turn<'_, M>) -> Outcome {
    let Some(key) = client.account.take() else {
        return Outcome::Continue;
    };
    client.system(turn, texts::LOGGED_OUT);
    if validate::name_key(&client.name) != key {
        return Outcome::Continue;
    }
    // A guest may not keep the account's name: back to the default one, which
    // nobody can claim (it has brackets), so only the registered name is released.
    turn.broker.release_name(client.id);
    let default = client.default_name.clone();
    name::claimed(client, default, Ok(()), turn)
}

pub(super) fn change_password<M: Mailbox>(
    client: &mut ClientState,
    old: &str,
    new: &str,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let Some(accounts) = backend(client, turn) else {
        return Outcome::Continue;
    };
    let Some(key) = client.account.clone() else {
        client.system(turn, texts::NOT_LOGGED_IN);
        return Outcome::Continue;
    };
    let refusal = if old.len() > MAX_PASSWORD_BYTES {
        Some(texts::BAD_CREDENTIALS)
    } else {
        check_password(new)
    };
    if let Some(refusal) = refusal {
        client.system(turn, refusal);
        return Outcome::Continue;
    }
    match accounts.change_password(client.member(turn.mailbox), &key, old, new) {
        Reply::Done(outcome) => password_changed(client, outcome, turn),
        Reply::Pending => client.wait(Awaiting::ChangePassword),
    }
}

/// The password change came back.
pub(super) fn password_changed<M: Mailbox>(
    client: &mut ClientState,
    outcome: Result<(), BrokerError>,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    match outcome {
        Ok(()) => {
            client.system(turn, texts::PASSWORD_CHANGED);
            // The backend made every token of the account useless: a new one here.
            client.token = None;
            if let Some(key) = client.account.clone() {
                hand_token(client, &key, turn);
            }
        }
        Err(error) => client.system(turn, failure_text(error)),
    }
    Outcome::Continue
}
