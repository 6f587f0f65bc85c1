//! The raw bindings `wit-bindgen` generates from `wit/plugin.wit` (world
//! `plugin`). The rest of the SDK wraps these; reach in here only for
//! something the wrappers do not cover.

wit_bindgen::generate!({
    world: "plugin",
    path: "../wit",
    // `export_plugin!` expands in the plugin's crate and calls this macro
    // with `with_types_in $crate::bindings`, so the plugin needs no direct
    // dependency on wit-bindgen.
    pub_export_macro: true,
    export_macro_name: "__export_hooks",
    default_bindings_module: "mcpd_plugin_sdk::bindings",
    // For tests and for plugins comparing decisions.
    additional_derives: [PartialEq],
});
