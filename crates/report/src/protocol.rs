//! What the numbers of a table were measured under. Most disputes over FID come from
//! protocols that differ unseen (the reference split, the number of samples, the
//! resizer, the generator scored); a table whose cells differ in one is marked, with
//! the difference named, rather than printed as if its numbers compared.
//!
//! Differences are looked for among the stages of one row: the rows of the paper's
//! tables are data sets, whose references differ by design; the cells of a row are
//! the methods being compared.

use std::collections::BTreeMap;

use serde::Serialize;

/// What a protocol fact reads as for a stage whose record does not have it (made
/// before its kind recorded one, or by a kind that does not).
pub const NOT_RECORDED: &str = "not recorded";

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Protocols {
    /// Facts every stage of the table shares.
    pub shared: BTreeMap<String, String>,
    /// Facts that differ between stages of one row.
    pub differences: Vec<Difference>,
}

/// One fact that differs within a row: each value with the stages that have it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub row: Vec<String>,
    pub fact: String,
    pub values: BTreeMap<String, Vec<String>>,
}

impl Protocols {
    /// From each stage's row and protocol.
    pub fn of(stages: &[(Vec<String>, &str, &BTreeMap<String, String>)]) -> Protocols {
        let facts: std::collections::BTreeSet<&String> =
            stages.iter().flat_map(|(_, _, p)| p.keys()).collect();
        let value = |p: &BTreeMap<String, String>, fact: &str| {
            p.get(fact).cloned().unwrap_or_else(|| NOT_RECORDED.into())
        };
        let mut out = Protocols::default();
        let mut rows: Vec<&Vec<String>> = Vec::new();
        for (row, _, _) in stages {
            if !rows.contains(&row) {
                rows.push(row);
            }
        }
        for fact in facts {
            let everywhere: std::collections::BTreeSet<String> =
                stages.iter().map(|(_, _, p)| value(p, fact)).collect();
            if everywhere.len() == 1 {
                out.shared
                    .insert(fact.clone(), everywhere.into_iter().next().unwrap());
                continue;
            }
            for row in &rows {
                let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (r, stage, p) in stages {
                    if r == *row {
                        values
                            .entry(value(p, fact))
                            .or_default()
                            .push(stage.to_string());
                    }
                }
                if values.len() > 1 {
                    out.differences.push(Difference {
                        row: (*row).clone(),
                        fact: fact.clone(),
                        values,
                    });
                }
            }
        }
        out
    }

    /// The shared facts as one line: `resizer Legacy; images 10000`.
    pub fn shared_line(&self) -> Option<String> {
        (!self.shared.is_empty()).then(|| {
            self.shared
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Each difference as one sentence.
    pub fn difference_lines(&self) -> Vec<String> {
        self.differences
            .iter()
            .map(|d| {
                let values: Vec<String> = d
                    .values
                    .iter()
                    .map(|(v, stages)| format!("{v} ({})", stages.join(", ")))
                    .collect();
                let row = if d.row.is_empty() {
                    String::new()
                } else {
                    format!(" in row {}", d.row.join(" / "))
                };
                format!("{}{row} differs: {}", d.fact, values.join(" vs "))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocol(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn differences_within_a_row_are_named_and_between_rows_are_not() {
        let cifar = |images| protocol(&[("reference", "CIFAR-10 test"), ("images", images)]);
        let tiny = protocol(&[("reference", "Tiny ImageNet val"), ("images", "10000")]);
        let (a, b, c) = (cifar("10000"), cifar("5000"), protocol(&[]));
        let row = |r: &str| vec![r.to_string()];
        let p = Protocols::of(&[
            (row("cifar"), "score[a]", &a),
            (row("cifar"), "score[b]", &b),
            (row("tiny"), "score[c]", &tiny),
            (row("tiny"), "score[d]", &tiny),
        ]);
        assert!(p.shared.is_empty());
        assert_eq!(
            p.difference_lines(),
            ["images in row cifar differs: 10000 (score[a]) vs 5000 (score[b])"]
        );
        // A stage without a record of its protocol differs from one with.
        let p = Protocols::of(&[(row("x"), "s[a]", &a), (row("x"), "s[c]", &c)]);
        assert_eq!(p.differences.len(), 2);
        assert!(p.difference_lines()[0].contains("not recorded (s[c])"));
        // One protocol everywhere: shared, nothing marked.
        let p = Protocols::of(&[(row("x"), "s[a]", &a), (row("y"), "s[b]", &a)]);
        assert_eq!(
            p.shared_line().as_deref(),
            Some("images 10000; reference CIFAR-10 test")
        );
        assert!(p.differences.is_empty());
    }
}
