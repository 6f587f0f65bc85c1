//! `mcpd plugin new NAME`: a new plugin crate from the SDK's template.
//!
//! The template lives in `sdk/template/`; the SDK is referenced by path
//! (it is not published), found next to this mcpd's source checkout or
//! given with `--sdk`.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("../../sdk/template/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("../../sdk/template/lib.rs.tmpl");

/// The SDK in the checkout this mcpd was built from.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

/// Writes `dir/NAME/{Cargo.toml,src/lib.rs}`; returns the crate directory.
pub fn new_plugin(name: &str, dir: &Path, sdk: &Path) -> anyhow::Result<PathBuf> {
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        bail!("{name:?} is not a crate name: use lower-case letters, digits, '-' and '_', starting with a letter");
    }
    let sdk = sdk.canonicalize().with_context(|| format!("no plugin SDK at {}", sdk.display()))?;
    if !sdk.join("Cargo.toml").is_file() {
        bail!("{} is not the mcpd plugin SDK (no Cargo.toml)", sdk.display());
    }
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    let sdk_path = format!("path = {:?}", sdk.display().to_string());
    let fill = |template: &str| template.replace("{{name}}", name).replace("{{sdk_path}}", &sdk_path);
    std::fs::create_dir_all(root.join("src")).with_context(|| format!("cannot create {}", root.display()))?;
    std::fs::write(root.join("Cargo.toml"), fill(CARGO_TOML))?;
    std::fs::write(root.join("src/lib.rs"), fill(LIB_RS))?;
    Ok(root)
}
