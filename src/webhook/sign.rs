//! The `X-Userdrop-Signature` header: `t=<unix seconds>,v1=<hex
//! HMAC-SHA256(secret, "<t>.<body>")>`, Stripe's scheme, so receivers can
//! reuse their verification code and refuse replays by `t`. This module
//! must never log, store or return the secret.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header's value for `body` sent at `t` (Unix seconds).
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against Python's `hmac` on the same "<t>.<body>" bytes.
    #[test]
    fn the_signature_is_hmac_sha256_of_t_dot_body() {
        assert_eq!(
            signature(b"Jefe", 0, b""),
            "t=0,v1=813f643c8863ba9754215e64cdab172f2e96c1a413d772978aba7398cc864e55"
        );
        assert_eq!(
            signature(
                b"whsec_test",
                1_700_000_000,
                br#"{"event":"job.held","id":7}"#
            ),
            "t=1700000000,v1=ebaa341d9eea8d102b20f72988ebb8d6c8e3f8f484d5fe5278ea467d69d632f8"
        );
    }
}
