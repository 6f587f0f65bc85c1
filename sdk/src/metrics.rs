//! Metrics over the `host` import. mcpd exports them as
//! `mcpd_plugin_<plugin>_<name>`; names and label keys use `[a-z0-9_]`, at
//! most 8 labels.
//!
//! Each series (name and label values) is named to mcpd once per instance
//! (`counter-series`) and then updated by handle (`series-add`), which
//! copies no strings: a counter bump on every request stays cheap. The
//! handles are cached here, keyed by name and labels.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::host;

thread_local! {
    /// `(kind, name, labels)` → handle (`None`: mcpd refused the series).
    static HANDLES: RefCell<Handles> = RefCell::new(Handles::default());
}

#[derive(Default)]
struct Handles {
    by_key: HashMap<String, Option<u32>>,
    /// Reused to build lookup keys without allocating each time.
    key: String,
}

impl Handles {
    fn handle(
        &mut self,
        kind: char,
        name: &str,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Option<u32>,
    ) -> Option<u32> {
        self.key.clear();
        self.key.push(kind);
        self.key.push_str(name);
        for (k, v) in labels {
            self.key.push('\u{1f}');
            self.key.push_str(k);
            self.key.push('\u{1e}');
            self.key.push_str(v);
        }
        if let Some(handle) = self.by_key.get(self.key.as_str()) {
            return *handle;
        }
        let handle = make();
        // Label values drawn from clients could grow this without bound;
        // mcpd caps the series too, and a dropped entry is only asked again.
        if self.by_key.len() >= 10_000 {
            self.by_key.clear();
        }
        self.by_key.insert(self.key.clone(), handle);
        handle
    }
}

/// Adds `value` to the counter `name` with these labels.
pub fn counter(name: &str, labels: &[(&str, &str)], value: u64) {
    let handle =
        HANDLES.with_borrow_mut(|h| h.handle('c', name, labels, || host::counter_series(name, &owned(labels))));
    if let Some(handle) = handle {
        host::series_add(handle, value);
    }
}

/// Records `value` in the histogram `name` with these labels.
pub fn histogram(name: &str, labels: &[(&str, &str)], value: f64) {
    let handle =
        HANDLES.with_borrow_mut(|h| h.handle('h', name, labels, || host::histogram_series(name, &owned(labels))));
    if let Some(handle) = handle {
        host::series_observe(handle, value);
    }
}

// The generated import takes owned strings.
fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
