//! A credential's validity window, told to people: `org show` states it
//! (and exits 3 outside it), `run` refuses to start outside it and warns
//! when the end is near.

use mesh_iatp::{OrgCredential, Timestamp, Validity};

/// `run` warns when the credential expires within this many seconds.
pub const EXPIRY_WARNING_SECS: u64 = 86_400;

/// The exit code of `org show` for a credential outside its window.
pub const EXIT_NOT_VALID: u8 = 3;

/// A span of seconds for people: the largest whole unit, `3 days`,
/// `5 hours`, `1 minute`, `40 seconds`.
pub fn span(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 86_400 => (s / 86_400, "day"),
        s if s >= 3600 => (s / 3600, "hour"),
        s if s >= 60 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The credential's state at `now` in words, and whether it is valid:
/// `valid, expires 2026-12-31T00:00:00Z (in 27 days)`.
pub fn describe(cred: &OrgCredential, now: Timestamp) -> (String, bool) {
    match cred.validity(now) {
        Validity::Valid { expires_in } => (
            format!(
                "valid, expires {} (in {})",
                cred.expires.utc(),
                span(expires_in)
            ),
            true,
        ),
        Validity::Expired { ago } => (
            format!("EXPIRED at {} ({} ago)", cred.expires.utc(), span(ago)),
            false,
        ),
        Validity::NotYetValid { starts_in } => (
            format!(
                "NOT YET VALID: starts {} (in {})",
                cred.not_before.utc(),
                span(starts_in)
            ),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_name_their_largest_unit() {
        assert_eq!(span(0), "0 seconds");
        assert_eq!(span(1), "1 second");
        assert_eq!(span(3599), "59 minutes");
        assert_eq!(span(3600), "1 hour");
        assert_eq!(span(86_400 * 3 + 5), "3 days");
    }

    #[test]
    fn each_side_of_the_window_is_named() {
        let cred = OrgCredential {
            org: mesh_iatp::testing::identity("org").did().clone(),
            agent: mesh_iatp::testing::identity("agent").did().clone(),
            roles: vec!["r".into()],
            not_before: Timestamp(1_798_761_600),
            expires: Timestamp(1_798_761_600 + 30 * 86_400),
        };
        let start = cred.not_before;
        assert_eq!(
            describe(&cred, start.minus_secs(7200)),
            (
                "NOT YET VALID: starts 2027-01-01T00:00:00Z (in 2 hours)".into(),
                false
            )
        );
        assert_eq!(
            describe(&cred, start),
            (
                "valid, expires 2027-01-31T00:00:00Z (in 30 days)".into(),
                true
            )
        );
        assert_eq!(
            describe(&cred, cred.expires.plus_secs(90)),
            (
                "EXPIRED at 2027-01-31T00:00:00Z (1 minute ago)".into(),
                false
            )
        );
    }
}
