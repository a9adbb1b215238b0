//! What the transport needs from a token source, and nothing more.
//!
//! The token source (`crate::auth`) sits above the transport and logs in through it; the
//! transport sees it only through [`TokenProvider`], so tests can plug in a fixed token and the
//! transport never imports the module that imports it.

use futures_util::future::BoxFuture;

use super::HttpError;
use crate::secret::Secret;

/// A source of gateway tokens.
pub trait TokenProvider: Send + Sync {
    /// Makes sure a token is at hand, logging in if there is none or it is about to expire.
    /// Called before a request takes its pacing slot, so the slot's time is the time it leaves.
    fn ready(&self) -> BoxFuture<'_, Result<(), HttpError>>;
    /// The token to send, read once per attempt.
    fn token(&self) -> BoxFuture<'_, Result<Secret, HttpError>>;
    /// Replaces a token the gateway rejected with a 401, unless another request already did.
    fn renew<'a>(&'a self, rejected: &'a Secret) -> BoxFuture<'a, Result<(), HttpError>>;
    /// Ends the source for the run: a fresh token was rejected too, so logging in again cannot
    /// help. Every later caller fails at once.
    fn give_up<'a>(&'a self, why: &'a HttpError) -> BoxFuture<'a, ()>;
    /// Logins (or mints) made so far, for the summary.
    fn logins(&self) -> u64;
}

/// A fixed token: for tests of the transport, and for anything that must not log in.
pub struct FixedToken(pub Secret);

impl TokenProvider for FixedToken {
    fn ready(&self) -> BoxFuture<'_, Result<(), HttpError>> {
        Box::pin(async { Ok(()) })
    }
    fn token(&self) -> BoxFuture<'_, Result<Secret, HttpError>> {
        Box::pin(async { Ok(self.0.clone()) })
    }
    fn renew<'a>(&'a self, _: &'a Secret) -> BoxFuture<'a, Result<(), HttpError>> {
        Box::pin(async { Ok(()) })
    }
    fn give_up<'a>(&'a self, _: &'a HttpError) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    fn logins(&self) -> u64 {
        0
    }
}
