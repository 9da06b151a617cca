//! Users, roles, logins and the first-login setup (password change and phone binding).
//!
//! Passwords are hashed with argon2id (PHC strings). A login returns a random 256-bit session token; only its
//! SHA-256 is stored, so a copy of the database holds no usable token. Tokens expire (`accounts.login_ttl`)
//! and are revoked by logout, a password change or disabling the user. Until a user has changed the
//! initial password and confirmed a phone number with a 6-digit code, [`User::setup_missing`] names what
//! is left and the API refuses everything else. Failed logins and verifications are limited per address and
//! per account ([`limiter::AuthLimiter`]). Hashing is in `password`, the first-login steps in `setup`, message
//! delivery in `sender`.

pub mod limiter;
mod password;
mod sender;
mod setup;

pub use password::{hash_password, verify_password};
pub use sender::{BoxFuture, OutboxSender, Outgoing, Sender};

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::AccountsConfig;
use crate::store::{timestamp, Store, StoreError};

/// A user's role. Each role may do what the ones before it may, except where an endpoint says otherwise
/// (customers see only their own tickets; only administrators manage users and record meetings).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Technician,
    Supervisor,
    Administrator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Technician => "technician",
            Role::Supervisor => "supervisor",
            Role::Administrator => "administrator",
        }
    }
    /// Staff: everyone but customers.
    pub fn is_staff(self) -> bool {
        self >= Role::Technician
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Role, ()> {
        Ok(match s {
            "customer" => Role::Customer,
            "technician" => Role::Technician,
            "supervisor" => Role::Supervisor,
            "administrator" => Role::Administrator,
            _ => return Err(()),
        })
    }
}

/// Why an account operation failed. The API maps each to a status and code in one place.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Wrong login, wrong password, or a disabled user (deliberately not told apart).
    #[error("wrong login or password")]
    BadCredentials,
    /// No token, or an unknown, expired or revoked one.
    #[error("not logged in, or the session expired")]
    Unauthenticated,
    /// The old password given to a password change is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// A new password that is too short or equal to the old one.
    #[error("{0}")]
    WeakPassword(String),
    /// A verification code that is wrong, expired or used up.
    #[error("{0}")]
    BadVerification(&'static str),
    /// Too many failures from this address or for this account.
    #[error("too many attempts; retry in {0} s")]
    RateLimited(u64),
    /// A field is missing or malformed.
    #[error("{0}")]
    Invalid(String),
    /// An employee id or e-mail address already in use.
    #[error("{0} is already in use")]
    Taken(&'static str),
    /// No such user.
    #[error("no such user")]
    NoSuchUser,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> AccountError {
        AccountError::Store(StoreError::Sql(e))
    }
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub employee_id: String,
    pub email: Option<String>,
    pub name: String,
    pub department: String,
    pub contact: String,
    pub phone: Option<String>,
    pub role: Role,
    pub must_change_password: bool,
    pub phone_verified: bool,
    pub disabled: bool,
    pub created_at: String,
}

type UserRow = (
    i64,
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    String,
    bool,
    bool,
    bool,
    String,
);

const USER_COLUMNS: &str = "id, employee_id, email, name, department, contact, phone, role, \
     must_change_password, phone_verified, disabled, created_at";

fn user_from(r: UserRow) -> User {
    User {
        id: r.0,
        employee_id: r.1,
        email: r.2,
        name: r.3,
        department: r.4,
        contact: r.5,
        phone: r.6,
        role: r.7.parse().unwrap_or(Role::Customer),
        must_change_password: r.8,
        phone_verified: r.9,
        disabled: r.10,
        created_at: r.11,
    }
}

impl User {
    /// What the first-login setup still needs, or `None` when it is done.
    pub fn setup_missing(&self) -> Option<&'static str> {
        match (self.must_change_password, self.phone_verified) {
            (true, true) => Some("change the initial password (POST /api/v1/auth/password)"),
            (true, false) => Some(
                "change the initial password (POST /api/v1/auth/password) and bind a phone \
                 (POST /api/v1/auth/phone, then /api/v1/auth/phone/verify)",
            ),
            (false, false) => {
                Some("bind a phone (POST /api/v1/auth/phone, then /api/v1/auth/phone/verify)")
            }
            (false, true) => None,
        }
    }
}

/// A new user, as an administrator creates it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub employee_id: String,
    #[serde(default)]
    pub email: Option<String>,
    pub name: String,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub contact: String,
    pub role: Role,
    /// Initial password; it must be changed at first login.
    pub password: String,
}

/// What [`Accounts::bootstrap`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// The database already had users.
    Existing,
    /// `admin` was created with `accounts.bootstrap_password`.
    Configured,
    /// `admin` was created with this random one-time password.
    Generated(String),
}

/// The account service.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub cfg: AccountsConfig,
    pub sender: Arc<dyn Sender>,
    pub limiter: Arc<limiter::AuthLimiter>,
    /// Verification codes sent per user (each costs a message).
    pub sends: Arc<limiter::AuthLimiter>,
    rng: SystemRandom,
}

/// A successful login.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginOk {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: String,
    pub user: User,
    /// What the first-login setup still needs; every other endpoint is refused until it is done.
    pub setup_required: Option<String>,
}

pub(crate) fn sha256_hex(s: &str) -> String {
    data_encoding::HEXLOWER
        .encode(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref())
}

impl Accounts {
    pub fn new(store: Store, clock: Arc<dyn Clock>, cfg: AccountsConfig) -> Accounts {
        let limiter = Arc::new(limiter::AuthLimiter::new(
            cfg.auth_failures_per_min,
            cfg.auth_failure_burst,
        ));
        let sends = Arc::new(limiter::AuthLimiter::new(
            cfg.verification_sends_per_hour / 60.0,
            3,
        ));
        Accounts {
            store,
            clock,
            cfg,
            sender: Arc::new(OutboxSender),
            limiter,
            sends,
            rng: SystemRandom::new(),
        }
    }

    pub(crate) fn now(&self) -> String {
        timestamp(self.clock.wall())
    }

    fn random_token(&self) -> String {
        let mut b = [0u8; 32];
        self.rng.fill(&mut b).expect("system randomness");
        data_encoding::BASE64URL_NOPAD.encode(&b)
    }

    /// Refuses a password shorter than `accounts.min_password_len`.
    fn check_password_len(&self, field: &str, pw: &str) -> Result<(), AccountError> {
        if pw.chars().count() < self.cfg.min_password_len {
            return Err(AccountError::WeakPassword(format!(
                "{field}: at least {} characters",
                self.cfg.min_password_len
            )));
        }
        Ok(())
    }

    /// A random one-time password (16 characters from an unambiguous alphabet).
    pub fn random_password(&self) -> String {
        const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
        let mut b = [0u8; 16];
        self.rng.fill(&mut b).expect("system randomness");
        // 256 % 54 != 0: the first 10 letters are 1/256 likelier; 16 of them still carry over 90 bits.
        b.iter()
            .map(|x| ALPHABET[usize::from(*x) % ALPHABET.len()] as char)
            .collect()
    }

    /// On an empty database, creates the administrator `admin` (the caller logs a generated password once).
    pub async fn bootstrap(&self) -> Result<Bootstrap, AccountError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.store.pool)
            .await?;
        if n > 0 {
            return Ok(Bootstrap::Existing);
        }
        let (password, generated) = if self.cfg.bootstrap_password.is_empty() {
            (self.random_password(), true)
        } else {
            (self.cfg.bootstrap_password.clone(), false)
        };
        self.create_user(&NewUser {
            employee_id: "admin".into(),
            email: None,
            name: "Administrator".into(),
            department: String::new(),
            contact: String::new(),
            role: Role::Administrator,
            password: password.clone(),
        })
        .await?;
        Ok(if generated {
            Bootstrap::Generated(password)
        } else {
            Bootstrap::Configured
        })
    }

    /// Creates a user who must change the password and bind a phone at first login.
    pub async fn create_user(&self, u: &NewUser) -> Result<User, AccountError> {
        let employee_id = u.employee_id.trim();
        if employee_id.is_empty() || employee_id.len() > 64 || employee_id.contains('@') {
            return Err(AccountError::Invalid(
                "employee_id: 1 to 64 characters, without '@'".into(),
            ));
        }
        check_field("name", &u.name, 1)?;
        check_field("department", &u.department, 0)?;
        check_field("contact", &u.contact, 0)?;
        let email = match u.email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) if e.contains('@') && e.len() <= 254 && !e.contains(char::is_whitespace) => {
                Some(e.to_ascii_lowercase())
            }
            Some(_) => return Err(AccountError::Invalid("email: not an e-mail address".into())),
        };
        self.check_password_len("password", &u.password)?;
        let hash = password::hash_off_thread(&u.password).await?;
        let mut tx = self.store.write().await?;
        let taken: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT employee_id, email FROM users WHERE LOWER(employee_id) = LOWER($1) OR (email IS NOT NULL AND email = $2)",
        )
        .bind(employee_id)
        .bind(&email)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some((eid, _)) = taken {
            return Err(AccountError::Taken(
                if eid.eq_ignore_ascii_case(employee_id) {
                    "employee_id"
                } else {
                    "email"
                },
            ));
        }
        let row: UserRow = sqlx::query_as(&format!(
            "INSERT INTO users (employee_id, email, name, department, contact, role, password_hash, \
             must_change_password, phone_verified, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, FALSE, FALSE, $8) RETURNING {USER_COLUMNS}"
        ))
        .bind(employee_id)
        .bind(&email)
        .bind(u.name.trim())
        .bind(u.department.trim())
        .bind(u.contact.trim())
        .bind(u.role.as_str())
        .bind(&hash)
        .bind(self.now())
        .fetch_one(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(user_from(row))
    }

    pub async fn user(&self, id: i64) -> Result<User, AccountError> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.store.pool)
                .await?;
        row.map(user_from).ok_or(AccountError::NoSuchUser)
    }

    pub async fn users(&self) -> Result<Vec<User>, AccountError> {
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
                .fetch_all(&self.store.pool)
                .await?;
        Ok(rows.into_iter().map(user_from).collect())
    }

    /// Logs in by employee id or e-mail. Failures count against the address's and the account's budgets.
    pub async fn login(
        &self,
        from: std::net::IpAddr,
        login: &str,
        password: &str,
    ) -> Result<LoginOk, AccountError> {
        let login = login.trim();
        let now = self.clock.now();
        let account_key = format!("login:{}", login.to_ascii_lowercase());
        self.limiter.check(now, from, &account_key)?;
        let row: Option<(i64, String, bool)> = sqlx::query_as(
            "SELECT id, password_hash, disabled FROM users WHERE LOWER(employee_id) = LOWER($1) OR email = $2",
        )
        .bind(login)
        .bind(login.to_ascii_lowercase())
        .fetch_optional(&self.store.pool)
        .await?;
        let hash = row
            .as_ref()
            .map_or(password::dummy_hash(), |r| r.1.as_str());
        // Unknown users are checked against a dummy hash, so both take the same time.
        let ok = password::verify_off_thread(password, hash).await;
        let Some((id, _, _)) = row.filter(|(_, _, disabled)| ok && !disabled) else {
            self.limiter.failed(now, from, &account_key);
            return Err(AccountError::BadCredentials);
        };
        self.limiter.succeeded(from, &account_key);
        let token = self.random_token();
        let expires = self.clock.wall() + self.cfg.login_ttl.0;
        let mut tx = self.store.write().await?;
        sqlx::query(
            "INSERT INTO login_sessions (token_hash, user_id, created_at, expires_at, revoked) VALUES ($1, $2, $3, $4, FALSE)",
        )
        .bind(sha256_hex(&token))
        .bind(id)
        .bind(self.now())
        .bind(timestamp(expires))
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        let user = self.user(id).await?;
        Ok(LoginOk {
            token,
            expires_at: timestamp(expires),
            setup_required: user.setup_missing().map(str::to_owned),
            user,
        })
    }

    /// The user a bearer token belongs to, if the token is live and the user enabled.
    pub async fn authenticate(&self, token: &str) -> Result<User, AccountError> {
        if token.is_empty() || token.len() > 128 {
            return Err(AccountError::Unauthenticated);
        }
        let row: Option<(i64, String, bool)> = sqlx::query_as(
            "SELECT user_id, expires_at, revoked FROM login_sessions WHERE token_hash = $1",
        )
        .bind(sha256_hex(token))
        .fetch_optional(&self.store.pool)
        .await?;
        match row {
            Some((uid, expires, false)) if expires > self.now() => {
                let u = self.user(uid).await?;
                if u.disabled {
                    Err(AccountError::Unauthenticated)
                } else {
                    Ok(u)
                }
            }
            _ => Err(AccountError::Unauthenticated),
        }
    }

    pub async fn logout(&self, token: &str) -> Result<(), AccountError> {
        let mut tx = self.store.write().await?;
        sqlx::query("UPDATE login_sessions SET revoked = TRUE WHERE token_hash = $1")
            .bind(sha256_hex(token))
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Administrator: disable or enable a user, change the role or contact fields.
    pub async fn update_user(&self, id: i64, patch: &UserPatch) -> Result<User, AccountError> {
        for (field, v, min) in [
            ("name", &patch.name, 1),
            ("department", &patch.department, 0),
            ("contact", &patch.contact, 0),
        ] {
            if let Some(v) = v {
                check_field(field, v, min)?;
            }
        }
        let mut tx = self.store.write().await?;
        let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        if exists.is_none() {
            return Err(AccountError::NoSuchUser);
        }
        if let Some(d) = patch.disabled {
            sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                .bind(d)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            if d {
                sqlx::query("UPDATE login_sessions SET revoked = TRUE WHERE user_id = $1")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        for (col, v) in [
            ("name", &patch.name),
            ("department", &patch.department),
            ("contact", &patch.contact),
        ] {
            if let Some(v) = v {
                sqlx::query(&format!("UPDATE users SET {col} = $1 WHERE id = $2"))
                    .bind(v.trim())
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        if let Some(r) = patch.role {
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(r.as_str())
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await?;
        self.user(id).await
    }

    /// Administrator: sets a new one-time password (returned) that must be changed at the next login, and
    /// revokes the user's sessions.
    pub async fn reset_password(&self, id: i64) -> Result<String, AccountError> {
        self.user(id).await?;
        let password = self.random_password();
        let hash = password::hash_off_thread(&password).await?;
        let mut tx = self.store.write().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, must_change_password = TRUE WHERE id = $2",
        )
        .bind(hash)
        .bind(id)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE login_sessions SET revoked = TRUE WHERE user_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(password)
    }
}

/// Longest name, department or contact, in characters.
pub const MAX_FIELD_CHARS: usize = 200;

/// A profile field: `min` to [`MAX_FIELD_CHARS`] characters (after trimming), no control characters.
fn check_field(field: &str, v: &str, min: usize) -> Result<(), AccountError> {
    let n = v.trim().chars().count();
    if n < min || n > MAX_FIELD_CHARS || v.chars().any(char::is_control) {
        return Err(AccountError::Invalid(format!(
            "{field}: {min} to {MAX_FIELD_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

/// Fields an administrator may change on a user.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub name: Option<String>,
    pub department: Option<String>,
    pub contact: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}
