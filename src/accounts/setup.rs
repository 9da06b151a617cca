//! The first-login setup: changing the initial password and binding a phone confirmed by a 6-digit code.

use ring::rand::SecureRandom;

use super::{password, sha256_hex, AccountError, Accounts, Outgoing, User};
use crate::store::timestamp;

impl Accounts {
    /// Changes the password; every other session of the user is revoked.
    pub async fn change_password(
        &self,
        user: &User,
        token: &str,
        old: &str,
        new: &str,
    ) -> Result<(), AccountError> {
        let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE id = $1")
            .bind(user.id)
            .fetch_one(&self.store.pool)
            .await?;
        if !password::verify_off_thread(old, &hash).await {
            return Err(AccountError::WrongPassword);
        }
        self.check_password_len("new_password", new)?;
        if new == old {
            return Err(AccountError::WeakPassword(
                "new_password: must differ from the current one".into(),
            ));
        }
        let new_hash = password::hash_off_thread(new).await?;
        let mut tx = self.store.write().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, must_change_password = FALSE WHERE id = $2",
        )
        .bind(new_hash)
        .bind(user.id)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE login_sessions SET revoked = TRUE WHERE user_id = $1 AND token_hash <> $2",
        )
        .bind(user.id)
        .bind(sha256_hex(token))
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sends a 6-digit code to `phone` (through the [`Sender`]) to confirm it; at most
    /// `accounts.verification_sends_per_hour` per user (burst 3), since each may cost a text message.
    pub async fn start_phone_binding(&self, user: &User, phone: &str) -> Result<(), AccountError> {
        let phone = phone.trim();
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        if !(5..=20).contains(&digits)
            || !phone
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-'))
        {
            return Err(AccountError::Invalid(
                "phone: 5 to 20 digits, optionally with +, spaces or dashes".into(),
            ));
        }
        self.sends
            .take_account(self.clock.now(), &format!("send:{}", user.id))?;
        let mut b = [0u8; 4];
        self.rng.fill(&mut b).expect("system randomness");
        let code = format!("{:06}", u32::from_be_bytes(b) % 1_000_000);
        let expires = timestamp(self.clock.wall() + self.cfg.verification_ttl.0);
        let now = self.now();
        let mut tx = self.store.write().await?;
        sqlx::query(
            "INSERT INTO phone_verifications (user_id, phone, code_hash, expires_at, attempts) VALUES ($1, $2, $3, $4, 0) \
             ON CONFLICT (user_id) DO UPDATE SET phone = excluded.phone, code_hash = excluded.code_hash, \
             expires_at = excluded.expires_at, attempts = 0",
        )
        .bind(user.id)
        .bind(phone)
        .bind(sha256_hex(&format!("{}:{code}", user.id)))
        .bind(expires)
        .execute(&mut **tx)
        .await?;
        let body = format!(
            "assist-relay verification code: {code} (valid {})",
            self.cfg.verification_ttl
        );
        let m = Outgoing {
            user_id: Some(user.id),
            channel: "sms",
            recipient: phone,
            body: &body,
            at: &now,
        };
        self.sender.send(&mut tx, m).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Confirms the phone with the code sent by [`Accounts::start_phone_binding`].
    pub async fn verify_phone(
        &self,
        from: std::net::IpAddr,
        user: &User,
        code: &str,
    ) -> Result<(), AccountError> {
        let now = self.clock.now();
        let key = format!("verify:{}", user.id);
        self.limiter.check(now, from, &key)?;
        let mut tx = self.store.write().await?;
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT phone, code_hash, expires_at, attempts FROM phone_verifications WHERE user_id = $1",
        )
        .bind(user.id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((phone, hash, expires, attempts)) = row else {
            return Err(AccountError::BadVerification(
                "no verification code was sent: POST /api/v1/auth/phone first",
            ));
        };
        if expires <= self.now() {
            return Err(AccountError::BadVerification(
                "the verification code expired: request a new one",
            ));
        }
        if attempts >= i64::from(self.cfg.verification_attempts) {
            return Err(AccountError::BadVerification(
                "too many wrong codes: request a new one",
            ));
        }
        // Digests are compared (as the operator key is): the time taken says nothing about the code.
        if sha256_hex(&format!("{}:{}", user.id, code.trim())) != hash {
            sqlx::query(
                "UPDATE phone_verifications SET attempts = attempts + 1 WHERE user_id = $1",
            )
            .bind(user.id)
            .execute(&mut **tx)
            .await?;
            tx.commit().await?;
            self.limiter.failed(now, from, &key);
            return Err(AccountError::BadVerification("wrong verification code"));
        }
        sqlx::query("UPDATE users SET phone = $1, phone_verified = TRUE WHERE id = $2")
            .bind(&phone)
            .bind(user.id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM phone_verifications WHERE user_id = $1")
            .bind(user.id)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        self.limiter.succeeded(from, &key);
        Ok(())
    }
}
