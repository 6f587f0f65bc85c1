//! The raw bindings `wit-bindgen` generates from `wit/plugin.wit`: world
//! `plugin` here, world `translator-plugin` in [`translator`]. The rest of
//! the SDK wraps these; reach in here only for something the wrappers do
//! not cover.

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

/// World `translator-plugin`: the `translator` export. Its imports and data
/// types are the ones generated above (`with`), so a `Message` or an
/// `RpcError` is the same Rust type whichever world a crate implements, and
/// the host wrappers (`http`, `store`, `log`) serve both.
pub mod translator {
    wit_bindgen::generate!({
        world: "translator-plugin",
        path: "../wit",
        with: {
            "mcpd:plugin/types@0.2.1": crate::bindings::mcpd::plugin::types,
            "mcpd:plugin/host@0.2.1": crate::bindings::mcpd::plugin::host,
            "mcpd:plugin/store@0.2.1": crate::bindings::mcpd::plugin::store,
            "mcpd:plugin/http-client@0.2.1": crate::bindings::mcpd::plugin::http_client,
        },
        // As above, for `export_translator!`. With `pub_export_macro` the
        // world's exports are described only by the section the macro emits,
        // so a hook plugin does not claim the translator export, nor a
        // translator the hooks.
        pub_export_macro: true,
        export_macro_name: "__export_translator",
        default_bindings_module: "mcpd_plugin_sdk::bindings::translator",
        additional_derives: [PartialEq],
    });
}
