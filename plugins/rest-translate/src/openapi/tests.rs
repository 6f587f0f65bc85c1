use super::*;

fn users() -> Value {
    serde_json::from_str(include_str!("../../tests/users.openapi.json")).expect("fixture is JSON")
}

fn find<'a>(ops: &'a [Operation], name: &str) -> &'a Operation {
    ops.iter().find(|o| o.name == name).unwrap_or_else(|| panic!("no operation {name}"))
}

#[test]
fn reads_operations_and_server() {
    let api = operations(&users()).unwrap();
    assert_eq!(api.server.as_deref(), Some("http://127.0.0.1:9000/v1"));
    assert!(api.skipped.is_empty());
    let ops = api.operations;
    let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["listUsers", "createUser", "getUser", "replaceTags", "delete_users_id"]);
}

#[test]
fn parameters_become_the_input_schema() {
    let ops = operations(&users()).unwrap().operations;
    let list = find(&ops, "listUsers");
    assert_eq!(list.description, "List users");
    assert_eq!(list.method, "GET");
    assert_eq!(
        list.input_schema,
        json!({"type": "object", "properties": {
            "limit": {"type": "integer", "description": "At most this many"},
            "tag": {"type": "array", "items": {"type": "string"}},
        }})
    );
    let get = find(&ops, "getUser");
    assert_eq!(get.input_schema["required"], json!(["id"]));
    assert_eq!(get.input_schema["properties"]["id"], json!({"type": "integer", "description": "The user's id"}));
    assert_eq!(get.params.len(), 2);
    assert_eq!(get.params[1].location, Location::Header);
    // Cookies have no place in a tool call.
    let delete = find(&ops, "delete_users_id");
    assert_eq!(delete.params.len(), 1);
    assert_eq!(delete.description, "Delete a user");
}

#[test]
fn object_bodies_are_flattened_without_read_only_fields() {
    let ops = operations(&users()).unwrap().operations;
    let create = find(&ops, "createUser");
    assert_eq!(create.description, "Create a user\n\nAdds a user; the server assigns the id.");
    assert_eq!(create.body, Body::Fields(vec!["address".into(), "manager".into(), "name".into()]));
    assert_eq!(create.rest, Rest::Body);
    let props = &create.input_schema["properties"];
    assert!(props.get("id").is_none());
    assert_eq!(props["address"]["properties"]["city"]["type"], "string");
    // `manager` is a User inside a User: the loop is cut there.
    assert_eq!(props["manager"], json!({}));
    assert_eq!(create.input_schema["required"], json!(["name"]));
}

#[test]
fn other_bodies_are_one_argument() {
    let ops = operations(&users()).unwrap().operations;
    let put = find(&ops, "replaceTags");
    assert_eq!(put.body, Body::Whole { arg: "body".into(), required: false });
    assert_eq!(put.input_schema["properties"]["body"]["type"], "array");
    assert_eq!(put.input_schema["required"], json!(["id"]));
}

#[test]
fn refuses_what_it_cannot_serve() {
    assert!(operations(&json!({"swagger": "2.0"})).unwrap_err().contains("Swagger 2.0"));
    assert!(operations(&json!({"openapi": "2.5"})).is_err());
    assert!(operations(&json!({})).is_err());
    let form = json!({"openapi": "3.1.0", "paths": {"/f": {
        "post": {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {}}}}},
        "get": {"operationId": "f"},
    }}});
    let api = operations(&form).unwrap();
    assert_eq!(api.operations.len(), 1);
    assert_eq!(api.skipped.len(), 1);
    let e = &api.skipped[0];
    assert!(e.starts_with("POST /f: request body is not JSON (application/x-www-form-urlencoded)"), "{e}");
}

#[test]
fn tool_names_are_sanitised() {
    assert_eq!(tool_name("get_/users/{id}"), "get_users_id");
    assert_eq!(tool_name("list pets!"), "list_pets");
    assert_eq!(tool_name("a.b-c"), "a.b-c");
    assert_eq!(tool_name("///"), "operation");
    assert_eq!(tool_name(&"x".repeat(100)).len(), 64);
}
