//! Access tokens (short-lived JWTs) and opaque random tokens (refresh, verification, reset)
//! that are stored only as SHA-256 hashes.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The only algorithm Convene signs with or accepts.
const ALGORITHM: Algorithm = Algorithm::HS256;
pub const ACCESS_TYPE: &str = "access";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub typ: String,
    /// The session (refresh-token family) this token belongs to; revoked with it.
    pub sid: Uuid,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    lifetime: Duration,
    /// The signing key again, for the keyed digests of secret URLs (`url_mac`).
    mac_key: SecretString,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid")]
    Invalid,
}

impl TokenKeys {
    pub fn new(secret: &SecretString, issuer: &str, audience: &str, lifetime: Duration) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        TokenKeys {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            lifetime,
            mac_key: secret.clone(),
        }
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), jsonwebtoken::errors::Error> {
        let expires = now + self.lifetime;
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id,
            iat: now.timestamp(),
            exp: expires.timestamp(),
            jti: Uuid::now_v7(),
            typ: ACCESS_TYPE.to_string(),
            sid: session_id,
        };
        let token = jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &self.encoding)?;
        Ok((token, expires))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        // The header is checked against the allow-list before any signature work.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != ALGORITHM {
            return Err(TokenError::Invalid);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if data.claims.typ != ACCESS_TYPE {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

impl TokenKeys {
    fn mac(&self, purpose: &str, message: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length, so this cannot fail; the fallback keeps it total.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(self.mac_key.expose_secret().as_bytes())
                .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        mac.update(purpose.as_bytes());
        mac.update(b"\n");
        mac.update(message.as_bytes());
        mac
    }

    /// A keyed digest (HMAC-SHA256 under the signing key) of `message`, base64url: what a
    /// secret URL carries instead of a stored token. `purpose` separates the uses, so a
    /// digest made for one is worthless for another.
    pub fn url_mac(&self, purpose: &str, message: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.mac(purpose, message).finalize().into_bytes())
    }

    /// Whether `mac` is `url_mac(purpose, message)`, compared in constant time.
    pub fn verify_url_mac(&self, purpose: &str, message: &str, mac: &str) -> bool {
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(mac) {
            Ok(bytes) => self.mac(purpose, message).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

/// A fresh 256-bit random token, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps instead of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            &SecretString::from("0123456789abcdef0123456789abcdef"),
            "convene",
            "convene-api",
            Duration::minutes(15),
        )
    }

    #[test]
    fn issued_tokens_verify_and_tampering_fails() {
        let k = keys();
        let (t, _) = k.issue(Uuid::now_v7(), Uuid::now_v7(), Utc::now()).unwrap();
        assert!(k.verify(&t).is_ok());
        let mut tampered = t.clone();
        tampered.pop();
        tampered.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(k.verify(&tampered).is_err());
        let (old, _) = k
            .issue(
                Uuid::now_v7(),
                Uuid::now_v7(),
                Utc::now() - Duration::hours(1),
            )
            .unwrap();
        assert!(matches!(k.verify(&old), Err(TokenError::Expired)));
    }

    #[test]
    fn url_macs_verify_only_for_their_purpose_message_and_key() {
        let k = keys();
        let mac = k.url_mac("calendar", "abc:1");
        assert!(k.verify_url_mac("calendar", "abc:1", &mac));
        assert!(!k.verify_url_mac("calendar", "abc:2", &mac));
        assert!(!k.verify_url_mac("other", "abc:1", &mac));
        assert!(!k.verify_url_mac("calendar", "abc:1", "not base64!"));
        let other = TokenKeys::new(
            &SecretString::from("another-key-0123456789abcdef01234"),
            "convene",
            "convene-api",
            Duration::minutes(15),
        );
        assert!(!other.verify_url_mac("calendar", "abc:1", &mac));
    }

    #[test]
    fn random_tokens_are_256_bit_and_distinct() {
        let a = random_token();
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&a)
                .unwrap()
                .len(),
            32
        );
        assert_ne!(a, random_token());
        assert_eq!(token_hash(&a).len(), 64);
    }
}
