//! Password hashing: argon2id with default parameters (PHC strings), run off the async workers.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::AccountError;

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

/// [`hash_password`] on a blocking thread: argon2 takes tens of milliseconds of CPU.
pub(crate) async fn hash_off_thread(password: &str) -> Result<String, AccountError> {
    let p = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&p))
        .await
        .map_err(|_| AccountError::Invalid("password hashing failed".into()))
}

/// Checks a password against its PHC hash (argon2's comparison is constant-time).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the login names nobody, so both cases take the same time.
pub(crate) fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("no such user: this hash only spends the same time"))
}

/// [`verify_password`] on a blocking thread.
pub(crate) async fn verify_off_thread(password: &str, hash: &str) -> bool {
    let (p, h) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || verify_password(&p, &h))
        .await
        .unwrap_or(false)
}
