//! The annotation and label keys supsvc writes: one domain the project owns, `supsvc.io/`.
//!
//! Releases before this one wrote some of them under `supsvc.vmware.com/` (a domain supsvc does not
//! own). Those keys are still read ([`annotation`]), so objects annotated by an older release keep
//! working: a Package overridden before can still be reverted, a break-glass request written with
//! the old key still counts. Nothing writes them any more.
//!
//! Kubernetes' rule for the prefix: a DNS subdomain, then `/`, then a name of at most 63 characters
//! (<https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations/#syntax-and-character-set>).

use serde_json::Value;

/// The prefix of every key supsvc writes.
pub const DOMAIN: &str = "supsvc.io";
/// The prefix older releases wrote some keys under; read, never written.
pub const LEGACY_DOMAIN: &str = "supsvc.vmware.com";

/// On the parent PackageInstall: the id of a `fix` run and the last step it completed (JSON).
pub const FIX_PROGRESS: &str = "supsvc.io/fix-progress";
/// On each child PackageInstall: the id of the `fix` run that changed it, so every run is a change.
pub const FIX_TRIGGER: &str = "supsvc.io/fix-trigger";
/// On a paused PackageInstall: why it is paused (free text). Any key with `reason` in it counts as
/// a reason (see `fix::preconditions::reason_annotation`); this is the one supsvc suggests.
pub const PAUSE_REASON: &str = "supsvc.io/pause-reason";
/// On a Package: the imgpkg bundle image before `override-image` changed it (`--revert` restores it).
pub const PREVIOUS_IMAGE: &str = "supsvc.io/previous-image";
/// On a PVC or StatefulSet: the reason of a break-glass change (storage-guard); also the audit
/// annotation recording it.
pub const BREAK_GLASS: &str = "supsvc.io/break-glass";
/// On the `<values secret>-previous` Secret: which values Secret it is the previous version of.
pub const PREVIOUS_VALUES_OF: &str = "supsvc.io/previous-values-of";
/// On the `<values secret>-previous` Secret: when it was saved (RFC 3339).
pub const SAVED_AT: &str = "supsvc.io/saved-at";
/// On a Namespace: the admission webhook does not see its requests (the webhook's own namespace).
pub const WEBHOOK_EXEMPT: &str = "supsvc.io/webhook-exempt";

/// `key` under [`LEGACY_DOMAIN`] (`supsvc.io/x` → `supsvc.vmware.com/x`); `None` for a key of
/// another domain.
pub fn legacy(key: &str) -> Option<String> {
    let name = key.strip_prefix(DOMAIN)?.strip_prefix('/')?;
    Some(format!("{LEGACY_DOMAIN}/{name}"))
}

/// The non-empty value of annotation `key` on `object` (a Kubernetes object as JSON), else of its
/// [`legacy`] spelling; `None` when neither is set.
pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    let annotations = &object["metadata"]["annotations"];
    let non_empty = |k: &str| annotations[k].as_str().filter(|v| !v.trim().is_empty());
    non_empty(key).or_else(|| legacy(key).and_then(|old| non_empty(&old)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_key_is_in_the_domain_with_a_valid_name() {
        for key in [
            FIX_PROGRESS,
            FIX_TRIGGER,
            PAUSE_REASON,
            PREVIOUS_IMAGE,
            BREAK_GLASS,
            PREVIOUS_VALUES_OF,
            SAVED_AT,
            WEBHOOK_EXEMPT,
        ] {
            let (prefix, name) = key.split_once('/').expect(key);
            assert_eq!(prefix, DOMAIN, "{key}");
            assert!(
                !name.is_empty()
                    && name.len() <= 63
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{key}"
            );
        }
    }

    #[test]
    fn the_old_spelling_is_still_read_and_the_new_one_wins() {
        assert_eq!(
            legacy(PREVIOUS_IMAGE).as_deref(),
            Some("supsvc.vmware.com/previous-image")
        );
        assert_eq!(legacy("kapp.k14s.io/app"), None);
        assert_eq!(legacy("supsvc.iox/previous-image"), None);

        let old = json!({"metadata": {"annotations": {"supsvc.vmware.com/previous-image": "a"}}});
        assert_eq!(annotation(&old, PREVIOUS_IMAGE), Some("a"));
        let both = json!({"metadata": {"annotations": {
            "supsvc.vmware.com/previous-image": "a", "supsvc.io/previous-image": "b"}}});
        assert_eq!(annotation(&both, PREVIOUS_IMAGE), Some("b"));
        let blank = json!({"metadata": {"annotations": {
            "supsvc.io/previous-image": " ", "supsvc.vmware.com/previous-image": "a"}}});
        assert_eq!(
            annotation(&blank, PREVIOUS_IMAGE),
            Some("a"),
            "an empty value is not set"
        );
        assert_eq!(annotation(&json!({}), PREVIOUS_IMAGE), None);
        assert_eq!(
            annotation(&json!({"metadata": {"annotations": null}}), BREAK_GLASS),
            None
        );
    }
}
