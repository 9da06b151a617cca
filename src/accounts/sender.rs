//! Where verification codes and notifications go: a pluggable [`Sender`]; the default, [`OutboxSender`],
//! writes them to the `outbox` table.

use crate::store::{StoreError, WriteTx};

/// Where verification codes and notifications go. The default, [`OutboxSender`], writes them to the
/// `outbox` table that administrators read; a deployment with an SMS gateway plugs in its own.
pub trait Sender: Send + Sync + std::fmt::Debug + 'static {
    /// Delivers (or queues) `m` as part of the transaction `tx`.
    fn send<'a>(
        &'a self,
        tx: &'a mut WriteTx,
        m: Outgoing<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// One message to deliver.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The user it is for, if any.
    pub user_id: Option<i64>,
    /// `sms` (verification codes) or `notification`.
    pub channel: &'a str,
    /// A phone number, e-mail address or employee id.
    pub recipient: &'a str,
    pub body: &'a str,
    /// When it was sent (RFC 3339).
    pub at: &'a str,
}

/// A boxed future, so [`Sender`] is object safe.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Writes every message to the `outbox` table.
#[derive(Debug, Default)]
pub struct OutboxSender;

impl Sender for OutboxSender {
    fn send<'a>(
        &'a self,
        tx: &'a mut WriteTx,
        m: Outgoing<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO outbox (user_id, channel, recipient, body, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(m.user_id)
            .bind(m.channel)
            .bind(m.recipient)
            .bind(m.body)
            .bind(m.at)
            .execute(tx.conn())
            .await?;
            Ok(())
        })
    }
}
