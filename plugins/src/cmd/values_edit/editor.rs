//! Getting the new values: an editor as `kubectl edit` runs it (reopened with the errors as
//! comments), `-f`, `--set`, or `--rollback`; and reading what came back as YAML.

use super::*;

/// Parses a values document: empty is an empty map; anything but a map is refused.
pub(super) fn parse_values(text: &str) -> std::result::Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let v: Value = serde_saphyr::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    match v {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(v),
        other => Err(format!(
            "the values must be a YAML map of keys, not {}",
            match other {
                Value::Array(_) => "a list",
                _ => "a single value",
            }
        )),
    }
}

/// The lines that do not begin with `#`, as kubectl edit reads the saved file.
pub(super) fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if !line.starts_with('#') {
            out.push_str(line);
        }
    }
    out
}

pub(super) fn editor() -> String {
    ["KUBE_EDITOR", "EDITOR"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned())
}

pub(super) fn run_editor(path: &Path) -> Result<()> {
    let editor = editor();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|e| {
            Failure::new(
                format!("cannot run the editor {editor:?}: {e}"),
                "set KUBE_EDITOR or EDITOR to an editor on PATH",
            )
        })?;
    if !status.success() {
        return Err(Failure::new(
            format!(
                "the editor {editor:?} exited with {status}; a copy of your changes is kept at {:?}",
                path.display().to_string()
            ),
            "set KUBE_EDITOR or EDITOR to an editor that exits 0 on save",
        ));
    }
    Ok(())
}

pub(super) fn kept(path: &Path) -> String {
    format!(
        "A copy of your changes has been stored to {:?}",
        path.display().to_string()
    )
}

/// How an edit ended before anything was written.
pub(super) enum Edited {
    Cancelled(&'static str),
    Done(Checked, PathBuf),
}

/// kubectl edit's loop: open, read back, reopen with the errors as comments until valid or unchanged.
pub(super) fn edit_loop(target: &Target, force: bool) -> Result<Edited> {
    let intro = format!(
        "# Values of Supervisor Service {} ({}).\n# Sensitive values are shown in full here; the file is readable only by you and removed when done.\n#\n",
        target.service,
        target.describe()
    );
    let file = tempfile::Builder::new()
        .prefix(&format!("{}-edit-", target.service))
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| {
            Failure::new(
                format!("cannot create a temporary file: {e}"),
                "check TMPDIR",
            )
        })?;
    let (_, path) = file.keep().map_err(|e| {
        Failure::new(
            format!("cannot keep the temporary file: {e}"),
            "check TMPDIR",
        )
    })?;
    let write = |content: &str| {
        std::fs::write(&path, content).map_err(|e| {
            Failure::new(
                format!("cannot write {}: {e}", path.display()),
                "check TMPDIR",
            )
        })
    };
    write(&format!("{HEADER}{intro}{}", target.old_text))?;
    let original = strip_comments(&target.old_text);
    let mut last_invalid: Option<String> = None;
    loop {
        run_editor(&path)?;
        let edited = std::fs::read_to_string(&path).map_err(|e| {
            Failure::new(
                format!("cannot read {}: {e}", path.display()),
                "check TMPDIR",
            )
        })?;
        let stripped = strip_comments(&edited);
        if stripped.trim().is_empty() {
            let _ = std::fs::remove_file(&path);
            return Ok(Edited::Cancelled("Edit cancelled, saved file was empty."));
        }
        if last_invalid.is_none() && stripped == original {
            let _ = std::fs::remove_file(&path);
            return Ok(Edited::Cancelled("Edit cancelled, no changes made."));
        }
        if last_invalid.as_deref() == Some(stripped.as_str()) {
            return Err(Failure::new(
                format!(
                    "Edit cancelled, no valid changes were saved.\n{}",
                    kept(&path)
                ),
                "fix the errors listed at the top of that file and run values-edit again (-f FILE takes it as it is)",
            ));
        }
        match target.check(&stripped, force) {
            Ok(c) if c.changes.is_empty() => {
                let _ = std::fs::remove_file(&path);
                return Ok(Edited::Cancelled("Edit cancelled, no changes made."));
            }
            Ok(c) => return Ok(Edited::Done(c, path)),
            Err(errors) => {
                let mut block = format!(
                    "# The values of {} were not valid and nothing was written:\n",
                    target.service
                );
                for e in &errors {
                    // Every line a comment, or the next read would take it for values.
                    for (i, line) in e.lines().enumerate() {
                        block.push_str(if i == 0 { "# * " } else { "#   " });
                        block.push_str(line.trim_end());
                        block.push('\n');
                    }
                }
                block.push_str("#\n");
                write(&format!("{HEADER}{block}{intro}{stripped}"))?;
                last_invalid = Some(stripped);
            }
        }
    }
}

pub(super) fn read_file(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::usage(format!("cannot read the values from stdin: {e}"), ""))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(
            format!("cannot read -f {}: {e}", path.display()),
            "give a readable YAML file of values, or - for stdin",
        )
    })
}

pub(super) fn invalid(target: &Target, errors: &[String]) -> Failure {
    Failure::new(
        format!(
            "the new values of {} were refused; nothing was written:\n  {}",
            target.service,
            errors.join("\n  ")
        ),
        if errors.iter().any(|e| e.contains("refused before writing")) {
            "do what `Instead` says above; --force writes the values anyway (the reconcile will then fail until they are rolled back)"
        } else {
            "correct the values (the Package's schema: `kubectl get package -n <ns> <name> -o jsonpath='{.spec.valuesSchema}'`)"
        },
    )
}

/// The new values text from -f / --set / --rollback (None: interactive).
pub(super) async fn non_interactive_text(
    supervisor: &SupervisorApi,
    target: &Target,
    args: &ValuesEditOptions,
) -> Result<Option<String>> {
    if args.rollback {
        let name = format!("{}{PREVIOUS_SUFFIX}", target.secret_name);
        let prev = supervisor
            .get(&objects::secrets(), &target.namespace, &name)
            .await?
            .ok_or_else(|| {
                Failure::new(
                    format!(
                        "no previous values of {} to roll back to: Secret {}/{name} does not exist",
                        target.service, target.namespace
                    ),
                    "--rollback restores the values a values-edit replaced; none was made here yet",
                )
            })?;
        return Ok(Some(
            decode_data(&prev).remove(&target.key).unwrap_or_default(),
        ));
    }
    let base = match &args.values_file {
        Some(path) => Some(read_file(path)?),
        None => None,
    };
    if args.set.is_empty() {
        return Ok(base);
    }
    let mut values = match &base {
        Some(text) => parse_values(text).map_err(|e| invalid(target, &[e]))?,
        None => parse_values(&target.old_text).map_err(|e| {
            Failure::new(
                format!(
                    "the current values of {} do not parse ({e}); --set cannot edit them",
                    target.service
                ),
                "replace them whole with -f FILE, or edit them with values-edit (no --set)",
            )
        })?,
    };
    for arg in &args.set {
        values::set_path(&mut values, arg, target.schema.as_ref()).map_err(|e| {
            Failure::usage(
                e.to_string(),
                "--set takes path=value, e.g. persistence.persistentVolumeClaim.registry.size=60Gi",
            )
        })?;
    }
    Ok(Some(yaml(&values)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_stripped_as_kubectl_does() {
        assert_eq!(
            strip_comments("# a\nx: 1\n  # kept\n#b\ny: 2"),
            "x: 1\n  # kept\ny: 2"
        );
        assert_eq!(strip_comments(HEADER), "");
    }

    #[test]
    fn values_must_be_a_map() {
        assert_eq!(parse_values("").unwrap(), json!({}));
        assert_eq!(parse_values("a: 1\n").unwrap(), json!({"a": 1}));
        assert!(parse_values("- a\n").unwrap_err().contains("not a list"));
        assert!(parse_values("x").unwrap_err().contains("single value"));
        assert!(
            parse_values("a: [\n")
                .unwrap_err()
                .starts_with("invalid YAML")
        );
    }
}
