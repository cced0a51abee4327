//! `kubectl supsvc policy new NAME`: a policy crate that builds for wasm32-unknown-unknown and
//! natively, and passes its own tests, out of the box. The templates live in
//! `plugins/templates/policy/` and are compiled into the binary.

use std::path::{Path, PathBuf};

use heck::{ToSnakeCase, ToUpperCamelCase};

use super::{NewArgs, Sdk};
use crate::error::{Failure, Result};

/// The checkout's SDK, as seen when this binary was built.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/sdk");
const SDK_PATH_ENV: &str = "SUPSVC_SDK_PATH";
const SDK_PACKAGE: &str = "supsvc-policy-sdk";

/// `(path in the crate, template)`.
type Template = (&'static str, &'static str);

const COMMON: &[Template] = &[
    (
        "README.md",
        include_str!("../../../templates/policy/common/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../templates/policy/common/gitignore"),
    ),
    (
        "test_data/pod-create.json",
        include_str!("../../../templates/policy/common/test_data/pod-create.json"),
    ),
    (
        "test_data/pod-without-labels.json",
        include_str!("../../../templates/policy/common/test_data/pod-without-labels.json"),
    ),
];

const SUPSVC: &[Template] = &[
    (
        "Cargo.toml",
        include_str!("../../../templates/policy/supsvc/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../templates/policy/supsvc/src/lib.rs"),
    ),
];

const KUBEWARDEN: &[Template] = &[
    (
        "Cargo.toml",
        include_str!("../../../templates/policy/kubewarden/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../templates/policy/kubewarden/src/lib.rs"),
    ),
];

/// Where the new crate gets its SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SdkSource {
    /// supsvc-policy-sdk by path; `origin` says which checkout, for the Cargo.toml's comment.
    Path { dir: PathBuf, origin: String },
    /// kubewarden-policy-sdk from crates.io.
    CratesIo,
}

pub fn run(args: &NewArgs) -> Result<()> {
    check_name(&args.name)?;
    let sdk = match args.sdk {
        Sdk::Supsvc => find_sdk(
            args.sdk_path.as_deref(),
            std::env::var_os(SDK_PATH_ENV).map(PathBuf::from).as_deref(),
        )?,
        Sdk::Kubewarden if args.sdk_path.is_some() => {
            return Err(Failure::usage(
                "--sdk-path names supsvc-policy-sdk, but --sdk kubewarden uses crates.io's kubewarden-policy-sdk",
                "drop one of them",
            ));
        }
        Sdk::Kubewarden => SdkSource::CratesIo,
    };
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    check_empty(&dir)?;
    let files = render(&args.name, &sdk);
    for (path, content) in &files {
        write(&dir.join(path), content)?;
    }

    let wasm = format!(
        "target/wasm32-unknown-unknown/wasm-release/{}.wasm",
        args.name.to_snake_case()
    );
    let from = match &sdk {
        SdkSource::Path { dir, .. } => format!("{SDK_PACKAGE} at {}", dir.display()),
        SdkSource::CratesIo => "kubewarden-policy-sdk from crates.io".to_owned(),
    };
    outln!(
        "Created the policy crate {} in {} ({from}).\n\nNext:\n  cd {}\n  cargo test\n  \
         cargo build --target wasm32-unknown-unknown --profile wasm-release\n  \
         kubectl supsvc policy run --request test_data/pod-create.json --settings '{{\"deniedNames\": [\"nginx\"]}}' {wasm}",
        args.name,
        dir.display(),
        shell_word(&dir.display().to_string()),
    );
    // The build above needs the wasm32 target; say so now, with the command, rather than let cargo
    // fail later with "can't find crate for `core`".
    if let Err(e) = supsvc_wasm_target::ensure(
        supsvc_wasm_target::WASM32_UNKNOWN_UNKNOWN,
        &dir,
        supsvc_wasm_target::Install::Never,
    ) {
        errln!("note: {e}");
    }
    Ok(())
}

/// A cargo package name that also makes a Rust library name and type name.
fn check_name(name: &str) -> Result<()> {
    const KEYWORDS: &[&str] = &[
        "as",
        "async",
        "await",
        "break",
        "const",
        "continue",
        "crate",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "fn",
        "for",
        "gen",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "match",
        "mod",
        "move",
        "mut",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "struct",
        "super",
        "trait",
        "true",
        "type",
        "unsafe",
        "use",
        "where",
        "while",
        "abstract",
        "become",
        "box",
        "do",
        "final",
        "macro",
        "override",
        "priv",
        "try",
        "typeof",
        "unsized",
        "virtual",
        "yield",
        // Names cargo refuses for a package, or that shadow the standard library.
        "test",
        "std",
        "core",
        "alloc",
        "proc_macro",
    ];
    let well_formed = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !well_formed || KEYWORDS.contains(&name.to_snake_case().as_str()) {
        return Err(Failure::usage(
            format!("{name:?} cannot name a policy crate"),
            "use lower-case letters, digits, - and _, starting with a letter, and not a Rust keyword, \
             e.g. required-labels",
        ));
    }
    Ok(())
}

/// The SDK to depend on: `--sdk-path`, else `$SUPSVC_SDK_PATH`, else the checkout this binary
/// was built from, if it is still there.
fn find_sdk(flag: Option<&Path>, env: Option<&Path>) -> Result<SdkSource> {
    let explicit = [("--sdk-path", flag), (SDK_PATH_ENV, env)]
        .into_iter()
        .find_map(|(origin, dir)| dir.map(|dir| (origin, dir)));
    if let Some((origin, dir)) = explicit {
        let found = sdk_dir(dir).ok_or_else(|| {
            Failure::usage(
                format!("{origin} {}: no {SDK_PACKAGE} there", dir.display()),
                "give a supsvc checkout, or its policies/sdk directory",
            )
        })?;
        return Ok(SdkSource::Path {
            origin: format!("{origin} {}", dir.display()),
            dir: found,
        });
    }
    match sdk_dir(Path::new(BUILT_FROM_SDK)) {
        Some(dir) => Ok(SdkSource::Path {
            dir,
            origin: "the supsvc checkout kubectl-supsvc was built from".to_owned(),
        }),
        None => Err(Failure::usage(
            format!(
                "cannot find {SDK_PACKAGE}: it is not on crates.io, and the checkout this kubectl-supsvc \
                 was built from ({BUILT_FROM_SDK}) is not there"
            ),
            format!(
                "pass --sdk-path DIR (or set {SDK_PATH_ENV}) for a supsvc checkout, or use --sdk kubewarden \
                 to write the policy with crates.io's kubewarden-policy-sdk"
            ),
        )),
    }
}

/// `dir` itself or `dir/policies/sdk`, if it is the SDK's crate; absolute.
fn sdk_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("policies/sdk")]
        .into_iter()
        .find(|candidate| {
            std::fs::read_to_string(candidate.join("Cargo.toml")).is_ok_and(|manifest| {
                manifest
                    .lines()
                    .any(|line| line.trim() == format!("name = \"{SDK_PACKAGE}\""))
            })
        })
        .and_then(|found| found.canonicalize().ok())
}

fn check_empty(dir: &Path) -> Result<()> {
    let occupied = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) => dir.exists(),
    };
    if occupied {
        return Err(Failure::new(
            format!("{} already exists and is not empty", dir.display()),
            "choose another directory with --path, or remove it",
        ));
    }
    Ok(())
}

/// The crate's files, placeholders filled in: `{{name}}` (the package), `{{crate}}` (the library and
/// `.wasm` name), `{{Type}}` (the policy's type), `{{sdk_path}}`, `{{sdk_origin}}`, `{{sdk_line}}`.
fn render(name: &str, sdk: &SdkSource) -> Vec<(&'static str, String)> {
    let mut type_name = name.to_upper_camel_case();
    // Names the template itself uses.
    if [
        "Settings",
        "Policy",
        "Operation",
        "Verdict",
        "ValidationRequest",
        "Deserialize",
    ]
    .contains(&type_name.as_str())
    {
        type_name += "Policy";
    }
    let (templates, sdk_path, sdk_origin, sdk_line) = match sdk {
        SdkSource::Path { dir, origin } => (
            SUPSVC,
            // A JSON string is a valid TOML basic string.
            serde_json::to_string(&dir.to_string_lossy()).unwrap_or_default(),
            origin.clone(),
            "supsvc-policy-sdk",
        ),
        SdkSource::CratesIo => (
            KUBEWARDEN,
            String::new(),
            String::new(),
            "crates.io's kubewarden-policy-sdk",
        ),
    };
    COMMON
        .iter()
        .chain(templates)
        .map(|(path, template)| {
            let text = template
                .replace("{{name}}", name)
                .replace("{{crate}}", &name.to_snake_case())
                .replace("{{Type}}", &type_name)
                .replace("{{sdk_path}}", &sdk_path)
                .replace("{{sdk_origin}}", &sdk_origin)
                .replace("{{sdk_line}}", sdk_line);
            (*path, text)
        })
        .collect()
}

fn write(path: &Path, content: &str) -> Result<()> {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, content));
    written.map_err(|e| {
        Failure::new(
            format!("cannot write {}: {e}", path.display()),
            "check the directory's permissions and free space",
        )
    })
}

/// Quotes a path for the "Next:" lines when the shell would split or expand it.
fn shell_word(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk() -> SdkSource {
        SdkSource::Path {
            dir: PathBuf::from("/src/supsvc/policies/sdk"),
            origin: "--sdk-path /src/supsvc".into(),
        }
    }

    #[test]
    fn names() {
        for good in ["required-labels", "p", "no_delete2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "Required", "2fast", "-x", "a b", "a.b", "fn", "self", "test", "é",
        ] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.exit as u8, 2, "{bad}");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for source in [sdk(), SdkSource::CratesIo] {
            for (path, text) in render("required-labels", &source) {
                assert!(!text.contains("{{"), "{path} keeps a placeholder:\n{text}");
            }
        }
        let files = render("required-labels", &sdk());
        let file = |name: &str| &files.iter().find(|(p, _)| *p == name).unwrap().1;
        assert!(file("Cargo.toml").contains("name = \"required-labels\""));
        assert!(
            file("Cargo.toml")
                .contains(r#"supsvc-policy-sdk = { path = "/src/supsvc/policies/sdk" }"#)
        );
        assert!(
            file("Cargo.toml").contains("\n[workspace]\n"),
            "its own workspace"
        );
        assert!(file("src/lib.rs").contains("register_policy!(RequiredLabels);"));
        assert!(file("README.md").contains("wasm-release/required_labels.wasm"));
        let kubewarden = render("required-labels", &SdkSource::CratesIo);
        assert!(kubewarden.iter().any(|(p, t)| *p == "Cargo.toml"
            && t.contains("kubewarden-policy-sdk = ")
            && !t.contains("supsvc-policy-sdk")));
    }

    #[test]
    fn type_names_do_not_clash_with_the_templates() {
        let lib = |name: &str| {
            render(name, &sdk())
                .into_iter()
                .find(|(p, _)| *p == "src/lib.rs")
                .unwrap()
                .1
        };
        assert!(lib("settings").contains("pub struct SettingsPolicy;"));
        assert!(lib("policy").contains("pub struct PolicyPolicy;"));
        assert!(lib("no-delete").contains("pub struct NoDelete;"));
    }

    #[test]
    fn sdk_paths_are_toml_strings() {
        let source = SdkSource::Path {
            dir: PathBuf::from(r#"C:\Users\o"brien\supsvc"#),
            origin: String::new(),
        };
        let files = render("p", &source);
        let manifest = &files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
        assert!(
            manifest.contains(r#"path = "C:\\Users\\o\"brien\\supsvc""#),
            "{manifest}"
        );
    }

    #[test]
    fn finds_the_sdk_in_a_checkout_or_its_directory() {
        let checkout = tempfile::tempdir().unwrap();
        let sdk_dir_path = checkout.path().join("policies/sdk");
        std::fs::create_dir_all(&sdk_dir_path).unwrap();
        std::fs::write(
            sdk_dir_path.join("Cargo.toml"),
            "[package]\nname = \"supsvc-policy-sdk\"\n",
        )
        .unwrap();
        let want = sdk_dir_path.canonicalize().unwrap();
        for given in [checkout.path(), sdk_dir_path.as_path()] {
            match find_sdk(Some(given), None).unwrap() {
                SdkSource::Path { dir, origin } => {
                    assert_eq!(dir, want);
                    assert!(origin.starts_with("--sdk-path "), "{origin}");
                }
                other => panic!("{other:?}"),
            }
        }
        match find_sdk(None, Some(checkout.path())).unwrap() {
            SdkSource::Path { origin, .. } => assert!(origin.starts_with(SDK_PATH_ENV)),
            other => panic!("{other:?}"),
        }
        let elsewhere = tempfile::tempdir().unwrap();
        let e = find_sdk(Some(elsewhere.path()), None).unwrap_err();
        assert!(e.what.contains("no supsvc-policy-sdk there"), "{}", e.what);
        // This test runs in the checkout: the default finds it.
        assert!(matches!(find_sdk(None, None), Ok(SdkSource::Path { .. })));
    }

    #[test]
    fn refuses_a_directory_in_use() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_empty(dir.path()).is_ok());
        assert!(check_empty(&dir.path().join("new")).is_ok());
        std::fs::write(dir.path().join("x"), "").unwrap();
        let e = check_empty(dir.path()).unwrap_err();
        assert!(e.to_string().contains("hint: choose another directory"));
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("./my-policy"), "./my-policy");
        assert_eq!(shell_word("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
