//! The corpus of real kapp / kapp-controller texts (`tests/fixtures/kapp-texts/*.txt`, rewritten from
//! public sources with names replaced), read by the parser in every layout an operator meets them in:
//! as kapp writes them (several lines, indented), as vCenter shows them (one line), cut by
//! kapp-controller (a PackageInstall's 80-byte description, the tail of an output over its limit).
//!
//! The rule: a whole text gives the finding the fixture names; a cut text gives that finding or
//! `unknown`, never another one. And no text, of any length or bytes, panics the parser.

use std::path::PathBuf;

use supsvc_core::kapp::{self, Reading};

struct Case {
    file: String,
    expect: String,
    text: String,
}

fn corpus() -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kapp-texts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let raw = std::fs::read_to_string(&path).unwrap();
            let (head, text) = raw
                .split_once("\n---\n")
                .unwrap_or_else(|| panic!("{}: no `---` line", path.display()));
            let expect = head
                .lines()
                .find_map(|l| l.strip_prefix("# expect:"))
                .unwrap_or_else(|| panic!("{}: no `# expect:` line", path.display()))
                .trim()
                .to_owned();
            assert!(
                head.lines().any(|l| l.starts_with("# source:")),
                "{}: every text names its source",
                path.display()
            );
            Case {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                expect,
                text: text.to_owned(),
            }
        })
        .collect()
}

/// kapp-controller's `friendlyErrMsg` (pkg/reconciler/status.go): the first line, cut to 80 bytes
/// plus `...`, or `...` appended when more lines follow. Go cuts bytes; JSON shows a cut rune as U+FFFD.
fn description(text: &str) -> String {
    let message = format!("Reconcile failed: {text}");
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

/// kapp-controller's cut of an output over its limit (carvel-dev/kapp-controller#1840): the marker,
/// then the last `keep` bytes.
fn tail(text: &str, keep: usize) -> String {
    let bytes = text.as_bytes();
    let from = bytes.len().saturating_sub(keep);
    format!(
        "{}\n{}",
        kapp::TRUNCATED_MARKER,
        String::from_utf8_lossy(&bytes[from..])
    )
}

/// A cut text may lose what kapp said, never say something else: the same finding, `unknown`, or for
/// a fetch failure, fewer of the registries it named.
fn acceptable_when_cut(expect: &str, got: &str) -> bool {
    if got == expect || got == "unknown" {
        return true;
    }
    let (Some(("fetch-failed", want)), true) = (
        expect.split_once(' ').or(Some((expect, ""))),
        got.starts_with("fetch-failed"),
    ) else {
        return false;
    };
    let have = got.strip_prefix("fetch-failed").unwrap_or_default().trim();
    have.split(',')
        .filter(|h| !h.is_empty())
        .all(|h| want.split(',').any(|w| w == h))
}

#[test]
fn the_corpus_is_there_and_covers_every_reading() {
    let cases = corpus();
    assert!(cases.len() >= 20, "{} texts", cases.len());
    for kind in [
        "failed-wait",
        "forbidden-change",
        "refused",
        "fetch-failed",
        "timed-out",
        "unknown",
    ] {
        assert!(
            cases.iter().any(|c| c.expect.starts_with(kind)),
            "no text expects {kind}"
        );
    }
    // Several lines, as kapp writes them: at least the deadlock and the StatefulSet texts.
    assert!(cases.iter().filter(|c| c.text.contains("\n  ")).count() >= 10);
}

#[test]
fn every_text_in_every_layout() {
    let mut failures = Vec::new();
    for case in corpus() {
        let whole = [
            ("as kapp writes it", case.text.clone()),
            ("one line, as vCenter shows it", kapp::flatten(&case.text)),
            (
                "pasted from a Windows terminal",
                format!("{}\r\n", case.text.replace('\n', "\r\n")),
            ),
        ];
        for (layout, text) in &whole {
            let got = kapp::read(text).summary();
            if got != case.expect {
                failures.push(format!(
                    "{} ({layout}): got {got:?}, want {:?}",
                    case.file, case.expect
                ));
            }
        }
        let len = case.text.len();
        let mut cut = vec![
            (
                "a PackageInstall's description".to_owned(),
                description(&case.text),
            ),
            (
                "a PackageInstall's description of the one-line form".to_owned(),
                description(&kapp::flatten(&case.text)),
            ),
        ];
        for keep in [len / 4, len / 3, len / 2, len * 2 / 3, len * 3 / 4, len - 1] {
            cut.push((format!("its last {keep} bytes"), tail(&case.text, keep)));
            cut.push((
                format!("the last {keep} bytes of the one-line form"),
                tail(&kapp::flatten(&case.text), keep),
            ));
        }
        for (layout, text) in &cut {
            let got = kapp::read(text).summary();
            if !acceptable_when_cut(&case.expect, &got) {
                failures.push(format!(
                    "{} ({layout}): got {got:?}, want {:?} or unknown; text {text:?}",
                    case.file, case.expect
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_failed_wait_names_the_child_and_its_message_in_both_kapp_versions() {
    for case in corpus()
        .iter()
        .filter(|c| c.expect.starts_with("failed-wait"))
    {
        for text in [case.text.clone(), kapp::flatten(&case.text)] {
            let Reading::FailedWait { failure } = kapp::read(&text) else {
                panic!("{}", case.file)
            };
            let message = failure.child_message().unwrap_or_default();
            assert!(!message.is_empty(), "{}", case.file);
            assert!(!message.starts_with('('), "{}: {message}", case.file);
            assert!(!message.starts_with("message:"), "{}: {message}", case.file);
        }
    }
}

/// A tiny deterministic generator (xorshift64*): the inputs are the same on every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn no_text_of_any_length_or_bytes_panics_the_parser() {
    let corpus: Vec<String> = corpus().into_iter().map(|c| c.text).collect();
    let pieces = [
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ": ",
        ":\n  ",
        " (",
        "/",
        "waiting on reconcile ",
        "update ",
        "packageinstall/x",
        " (v1)",
        " namespace: ",
        "Finished unsuccessfully",
        "(message: ",
        "message: ",
        "API server says: ",
        " (reason: ",
        "https://",
        "lookup ",
        "...",
        "\u{fffd}",
        "é",
        "\u{1F600}",
        kapp::TRUNCATED_MARKER,
        "\n",
        " ",
        "",
    ];
    let mut g = Gen(0x5eed_cafe_f00d_beef);
    let check = |text: &str| {
        let _ = kapp::read(text).summary();
        for f in kapp::parse_failures(text) {
            let _ = (
                f.child_message(),
                f.api_server_says(),
                f.is_forbidden_change(),
                f.object(),
            );
        }
        let _ = (kapp::registry_hosts(text), kapp::is_truncated(text));
    };
    for _ in 0..3000 {
        // Random bytes.
        let n = g.below(300);
        let bytes: Vec<u8> = (0..n).map(|_| g.next() as u8).collect();
        check(&String::from_utf8_lossy(&bytes));
        // Fragments of kapp's syntax in any order.
        let text: String = (0..g.below(40))
            .map(|_| pieces[g.below(pieces.len())])
            .collect();
        check(&text);
        // A real text cut anywhere and spliced with another.
        let a = corpus[g.below(corpus.len())].as_bytes();
        let b = corpus[g.below(corpus.len())].as_bytes();
        let (i, j) = (g.below(a.len()), g.below(b.len()));
        let mut spliced = a[..i].to_vec();
        spliced.extend_from_slice(&b[j..]);
        check(&String::from_utf8_lossy(&spliced));
    }
    // Very long texts, and very deep brackets.
    check(&"(".repeat(200_000));
    check(&format!(
        "{}{}",
        "waiting on reconcile a/b (v1) ".repeat(5_000),
        ")".repeat(5_000)
    ));
    check(&corpus.join("\n").repeat(200));
}
