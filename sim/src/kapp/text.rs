//! kapp's and kapp-controller's error texts, laid out exactly as the real tools lay them out.
//!
//! - kapp prints `kapp: Error: ` and its error through go-cli-ui's `MultiLineError`
//!   (github.com/cppforlife/go-cli-ui, `errors/multi_line_error.go` and `errors/error_piece.go`): the
//!   error's first line is cut into pieces by brackets (`(`, `[`, `{`, and the raw `...|`/`|...`);
//!   in the text outside any bracket every `: ` followed by an upper-case ASCII letter becomes `:` and a
//!   line break; the n-th resulting line is indented by 2n spaces. A first line whose brackets do not
//!   balance is printed as it is; the lines after the first are kept as they are.
//! - kapp-controller stores the stderr of the failed step with surrounding whitespace trimmed and any
//!   whitespace before a line break dropped (`pkg/exec/cmd_run_result.go`, `WithFriendlyYAMLStrings`:
//!   `\s+\n` -> `\n`).
//! - A PackageInstall's `friendlyDescription` is `friendlyErrMsg` (`pkg/reconciler/status.go`): the
//!   first line, cut to 80 bytes plus `...`, or with `...` when more lines follow.
//! - An output over kapp-controller's limit keeps its tail behind `[output truncated]`
//!   (carvel-dev/kapp-controller#1840: 1 MiB per status field).
//!
//! The simulator does not share this code with supsvc's parser (it is the independent oracle the
//! end-to-end tests compare against).

/// Where a bracket piece begins and what closes it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Piece {
    Root,
    Bracket,
    Raw,
}

/// go-cli-ui's `MultiLineError` applied to an error's text (without kapp's `kapp: Error: ` prefix).
pub fn multi_line(err: &str) -> String {
    let (first, rest) = match err.split_once('\n') {
        Some((f, r)) => (f, Some(r)),
        None => (err, None),
    };
    let Some(first) = split_first_line(first) else {
        return err.to_owned();
    };
    let mut out = String::with_capacity(err.len() + 32);
    for (i, chunk) in first.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&"  ".repeat(i));
        out.push_str(chunk);
    }
    if let Some(rest) = rest {
        out.push('\n');
        out.push_str(rest);
    }
    out
}

/// The first line with its top-level `: X` turned into `:\nX`; `None` when its brackets do not balance.
fn split_first_line(line: &str) -> Option<String> {
    let bytes = line.as_bytes();
    let forward = |i: usize, sep: &str| {
        i + sep.len() < bytes.len() && &bytes[i..i + sep.len()] == sep.as_bytes()
    };
    let backward = |i: usize, sep: &str| {
        i + 1 >= sep.len() && i < bytes.len() && &bytes[i + 1 - sep.len()..=i] == sep.as_bytes()
    };
    let mut stack = vec![Piece::Root];
    // Each char with whether it lies in the root's own text (splittable).
    let mut marks: Vec<(usize, bool)> = Vec::with_capacity(line.len());
    for (i, c) in line.char_indices() {
        let top = *stack.last()?;
        if top != Piece::Raw {
            match c {
                '[' | '{' | '(' => {
                    stack.push(Piece::Bracket);
                    marks.push((i, false));
                    continue;
                }
                ']' | '}' | ')' => {
                    stack.pop();
                    marks.push((i, false));
                    continue;
                }
                _ => {}
            }
        }
        if forward(i, "...|") {
            stack.push(Piece::Raw);
            marks.push((i, false));
        } else if backward(i, "|...") {
            stack.pop();
            marks.push((i, false));
        } else {
            marks.push((i, stack.len() == 1));
        }
    }
    if stack.len() != 1 {
        return None;
    }
    // `(: )([A-Z])` -> `:\n$2`, only where all three characters are root text.
    let mut out = String::with_capacity(line.len() + 16);
    let mut k = 0;
    while k < marks.len() {
        let (i, root) = marks[k];
        let is_sep = root
            && line[i..].starts_with(": ")
            && marks.get(k + 1).is_some_and(|m| m.1)
            && marks.get(k + 2).is_some_and(|&(j, r)| {
                r && line[j..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase())
            });
        if is_sep {
            out.push_str(":\n");
            k += 2;
            continue;
        }
        let end = marks.get(k + 1).map_or(line.len(), |m| m.0);
        out.push_str(&line[i..end]);
        k += 1;
    }
    Some(out)
}

/// What kapp writes on stderr when it fails: `kapp: Error: ` and the error, multi-line.
pub fn kapp_error(err: &str) -> String {
    format!("kapp: Error: {}", multi_line(err))
}

/// kapp-controller's `WithFriendlyYAMLStrings`: trimmed, whitespace before a line break dropped.
pub fn friendly_yaml(text: &str) -> String {
    let text = text.trim();
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        // `\s+\n`: the run up to its last line break, if anything precedes that break.
        match run.rfind('\n') {
            Some(last) if last > 0 => {
                out.push('\n');
                out.push_str(&run[last + 1..]);
            }
            _ => out.push_str(run),
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// kapp-controller's `friendlyErrMsg`: the first line, cut to 80 bytes plus `...`, or with `...` when
/// more lines follow. Go cuts bytes; a rune cut in two reads back as U+FFFD through JSON.
pub fn friendly_description(message: &str) -> String {
    let mut lines = message.split('\n');
    let first = lines.next().unwrap_or_default();
    if first.len() > 80 {
        format!("{}...", String::from_utf8_lossy(&first.as_bytes()[..80]))
    } else if lines.next().is_some() {
        format!("{first}...")
    } else {
        first.to_owned()
    }
}

/// kapp-controller's limit on one status output field (carvel-dev/kapp-controller#1840).
pub const OUTPUT_LIMIT: usize = 1 << 20;
/// The marker in front of a cut output.
pub const TRUNCATED_MARKER: &str = "[output truncated]\n";

/// An output cut to `limit` bytes as kapp-controller cuts it: the tail kept behind the marker.
pub fn truncate_output(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let keep = limit.saturating_sub(TRUNCATED_MARKER.len());
    let mut from = text.len() - keep;
    while !text.is_char_boundary(from) {
        from += 1;
    }
    format!("{TRUNCATED_MARKER}{}", &text[from..])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// go-cli-ui's own examples (errors/mutli_line_error_test.go), names replaced.
    #[test]
    fn multi_line_as_go_cli_ui_writes_it() {
        let cases = [
            (
                "waiting on reconcile packageinstall/addons (packaging.carvel.dev/v1alpha1) namespace: dom-c1: Finished unsuccessfully (Reconcile failed:  (message: Fetching resources: Error (see .status.usefulErrorMessage for details)))",
                "waiting on reconcile packageinstall/addons (packaging.carvel.dev/v1alpha1) namespace: dom-c1:\n  Finished unsuccessfully (Reconcile failed:  (message: Fetching resources: Error (see .status.usefulErrorMessage for details)))",
            ),
            (
                "update statefulset/db (apps/v1) namespace: ns: Updating resource statefulset/db (apps/v1) namespace: ns: API server says: StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden (reason: Invalid)",
                "update statefulset/db (apps/v1) namespace: ns:\n  Updating resource statefulset/db (apps/v1) namespace: ns:\n    API server says:\n      StatefulSet.apps \"db\" is invalid: spec:\n        Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden (reason: Invalid)",
            ),
            (
                "Overlaying data values (in following order: a.yml, b.yml): Document on line key 'x' (kv arg):1: Map item (key 'x') on line key 'x' (kv arg):1: Expected number of matched nodes to be 1, but was 0",
                "Overlaying data values (in following order: a.yml, b.yml):\n  Document on line key 'x' (kv arg):1:\n    Map item (key 'x') on line key 'x' (kv arg):1:\n      Expected number of matched nodes to be 1, but was 0",
            ),
            // Unbalanced: printed as it is.
            (
                "waiting on reconcile packageinstall/a (v1) namespace: n: Finished unsuccessfully (Reconcile failed: message: vendir: Error: Syncing",
                "waiting on reconcile packageinstall/a (v1) namespace: n: Finished unsuccessfully (Reconcile failed: message: vendir: Error: Syncing",
            ),
            // Only the first line is split; the raw piece is left whole.
            (
                "create service/r (v1) namespace: d: Service in version \"v1\" cannot be handled: decode: error found in ...|{\"ports\": Foo|..., bigger context\nsecond: Line",
                "create service/r (v1) namespace: d:\n  Service in version \"v1\" cannot be handled: decode: error found in ...|{\"ports\": Foo|..., bigger context\nsecond: Line",
            ),
            ("", ""),
            ("no colon here", "no colon here"),
        ];
        for (input, want) in cases {
            assert_eq!(multi_line(input), want, "{input}");
        }
        assert!(kapp_error("a: B").starts_with("kapp: Error: a:\n  B"));
    }

    #[test]
    fn friendly_yaml_drops_whitespace_before_line_breaks() {
        assert_eq!(
            friendly_yaml("  is invalid: \n\n  - a: Required\n\n (reason: Invalid)\n"),
            "is invalid:\n  - a: Required\n (reason: Invalid)"
        );
        assert_eq!(friendly_yaml("a:\n  B"), "a:\n  B");
    }

    #[test]
    fn descriptions_and_outputs_are_cut_as_kapp_controller_cuts_them() {
        assert_eq!(
            friendly_description("Reconcile failed: short"),
            "Reconcile failed: short"
        );
        assert_eq!(
            friendly_description("Reconcile failed: a:\n  B"),
            "Reconcile failed: a:..."
        );
        let long = format!("Reconcile failed: {}", "x".repeat(100));
        let cut = friendly_description(&long);
        assert_eq!(cut.len(), 83);
        assert!(cut.ends_with("..."));
        // A rune cut in two.
        let runes = format!("{}é{}", "a".repeat(79), "b".repeat(10));
        assert!(friendly_description(&runes).contains('\u{fffd}'));
        let text = "head-".repeat(100);
        let out = truncate_output(&text, 100);
        assert!(out.starts_with("[output truncated]\n"));
        assert!(out.len() <= 100 && text.ends_with(&out[TRUNCATED_MARKER.len()..]));
        assert_eq!(truncate_output("small", 100), "small");
    }
}
