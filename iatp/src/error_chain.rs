//! One line for an error and its causes, each said once: the printer every
//! binary of the workspace uses for its final `error: …` line.
//!
//! Many errors put their source's text into their own message (`opening
//! nope.pem: No such file or directory`) and also return it as
//! [`Error::source`], so printing the chain naively (`anyhow`'s `{:#}`)
//! says it twice. Here a cause whose text the line already holds is left
//! out.

use std::error::Error;
use std::fmt::Write;

/// `err` and each of its causes not already said, joined by `": "`.
pub fn one_line(err: &dyn Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.contains(&text) {
            let _ = write!(line, ": {text}");
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that says its source's text and also returns it.
    #[derive(Debug, thiserror::Error)]
    #[error("{what}: {source}")]
    struct Repeats {
        what: &'static str,
        #[source]
        source: std::io::Error,
    }

    /// An error that names only its context and leaves the cause to the
    /// chain.
    #[derive(Debug, thiserror::Error)]
    #[error("{what}")]
    struct Context {
        what: &'static str,
        #[source]
        source: Repeats,
    }

    fn not_found() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory")
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let err = Repeats {
            what: "nope.pem",
            source: not_found(),
        };
        assert_eq!(one_line(&err), "nope.pem: No such file or directory");
    }

    #[test]
    fn causes_not_yet_said_are_appended_in_order() {
        let err = Context {
            what: "loading the identity",
            source: Repeats {
                what: "nope.pem",
                source: not_found(),
            },
        };
        assert_eq!(
            one_line(&err),
            "loading the identity: nope.pem: No such file or directory"
        );
    }

    #[test]
    fn an_error_without_causes_is_its_message() {
        assert_eq!(one_line(&not_found()), "No such file or directory");
    }
}
