//! Multi-row statements the database can prepare once.
//!
//! A batch of rows is written as a few multi-row statements rather than a
//! statement a row (each statement is a round trip to the database's
//! worker thread). Two things keep those statements cheap:
//!
//! - **Fixed shapes.** A batch is cut into chunks whose row counts are
//!   powers of two (37 rows: 32, 4, 1), so each table has at most
//!   `log2(MAX_ROWS) + 1` statement texts, and the driver's per-connection
//!   statement cache keeps them prepared. Cut at the batch's own length,
//!   nearly every statement would be new and parsed again.
//! - **Anonymous placeholders on SQLite.** SQLite looks a numbered
//!   parameter (`$7`) up by name in a list, once while parsing and once
//!   while binding, so a statement of *n* parameters costs O(n²) string
//!   comparisons; `?` costs nothing. PostgreSQL only takes `$n`.

use std::fmt::Write;

/// Most rows in one statement: 128 rows × 5 parameters stays far below
/// SQLite's (32,766) and PostgreSQL's (65,535) limits on bound parameters.
const MAX_ROWS: usize = 128;

/// `items` cut into chunks of power-of-two lengths, largest first, none
/// longer than [`MAX_ROWS`].
pub(crate) fn chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        // The largest power of two not above what is left (MAX_ROWS is one).
        let len = 1 << rest.len().min(MAX_ROWS).ilog2();
        let (chunk, after) = rest.split_at(len);
        rest = after;
        Some(chunk)
    })
}

/// How a backend writes bound parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholders {
    /// `?`, bound in order (SQLite).
    Anonymous,
    /// `$1`, `$2`, … (PostgreSQL).
    Numbered,
}

impl Placeholders {
    /// Append the `n`th parameter (from 1).
    pub(crate) fn push(self, sql: &mut String, n: usize) {
        match self {
            Placeholders::Anonymous => sql.push('?'),
            Placeholders::Numbered => {
                let _ = write!(sql, "${n}");
            }
        }
    }

    /// Append `rows` groups of `cols` parameters: `($1, $2), ($3, $4)`.
    pub(crate) fn push_rows(self, sql: &mut String, rows: usize, cols: usize) {
        for r in 0..rows {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..cols {
                if c > 0 {
                    sql.push_str(", ");
                }
                self.push(sql, r * cols + c + 1);
            }
            sql.push(')');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_cut_into_power_of_two_chunks_in_order() {
        let items: Vec<usize> = (0..300).collect();
        for len in [0, 1, 2, 3, 37, 127, 128, 129, 255, 300] {
            let lens: Vec<usize> = chunks(&items[..len]).map(<[usize]>::len).collect();
            assert!(
                lens.iter().all(|l| l.is_power_of_two() && *l <= MAX_ROWS),
                "{len}: {lens:?}"
            );
            assert!(lens.windows(2).all(|w| w[0] >= w[1]), "{len}: {lens:?}");
            let joined: Vec<usize> = chunks(&items[..len]).flatten().copied().collect();
            assert_eq!(joined, items[..len], "{len}: every item once, in order");
        }
        let lens: Vec<usize> = chunks(&items[..37]).map(<[usize]>::len).collect();
        assert_eq!(lens, [32, 4, 1]);
    }

    #[test]
    fn placeholders_are_anonymous_on_sqlite_and_numbered_on_postgres() {
        let mut sql = String::new();
        Placeholders::Numbered.push_rows(&mut sql, 2, 3);
        assert_eq!(sql, "($1, $2, $3), ($4, $5, $6)");
        let mut sql = String::new();
        Placeholders::Anonymous.push_rows(&mut sql, 2, 2);
        assert_eq!(sql, "(?, ?), (?, ?)");
    }
}
