//! Chat messages and tool schemas in the OpenAI and `transformers` chat format.

use serde_json::{Map, Value};

use crate::error::TokenizerError;

/// One message of a conversation, as the chat template receives it.
///
/// `content` is always a string: `null` or a missing `content` (which OpenAI
/// clients send beside `tool_calls`) becomes `""`, and a list of text parts is
/// joined. Fields the template may read but this type does not name (`name`,
/// `tool_call_id`, ...) are kept in `extra`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The message text.
    pub content: String,
    /// Reasoning of an assistant turn, given apart from `content`.
    pub reasoning_content: Option<String>,
    /// Tool calls of an assistant turn, each `{"type": "function", "function": {"name", "arguments"}}`.
    pub tool_calls: Vec<Value>,
    /// Other fields of the message object, in their given order.
    pub extra: Map<String, Value>,
}

/// Names under which `transformers` accepts a message's reasoning, the standard one first.
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "thinking", "reasoning"];

impl ChatMessage {
    /// Creates a message with a role and text content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            reasoning_content: None,
            tool_calls: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Creates a `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// Creates a `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// Creates an `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }

    /// Creates a `tool` message carrying a tool's result.
    pub fn tool(content: impl Into<String>) -> Self {
        Self::new("tool", content)
    }

    /// Parses a JSON list of message objects; `what` names the source in errors
    /// (for example `messages file chat.json`).
    pub fn parse_list(json: &str, what: &str) -> Result<Vec<ChatMessage>, TokenizerError> {
        let value: Value = serde_json::from_str(json).map_err(|e| invalid(what, e.to_string()))?;
        Self::from_json_list(&value, what)
    }

    /// Converts an already parsed JSON list of message objects.
    pub fn from_json_list(value: &Value, what: &str) -> Result<Vec<ChatMessage>, TokenizerError> {
        let Some(items) = value.as_array() else {
            return Err(invalid(
                what,
                format!(
                    "expected a JSON list of message objects such as \
                     [{{\"role\": \"user\", \"content\": \"Hello\"}}], found {}",
                    json_kind(value)
                ),
            ));
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                Self::from_json(item).map_err(|m| invalid(what, format!("message {index}: {m}")))
            })
            .collect()
    }

    /// Converts one JSON message object; the error text does not name the message.
    fn from_json(value: &Value) -> Result<ChatMessage, String> {
        let Some(object) = value.as_object() else {
            return Err(format!(
                "expected an object with \"role\" and \"content\", found {}",
                json_kind(value)
            ));
        };

        let role = match object.get("role") {
            Some(Value::String(role)) if !role.is_empty() => role.clone(),
            Some(other) => {
                return Err(format!(
                    "\"role\" must be a non-empty string, found {other}"
                ));
            }
            None => return Err("\"role\" is missing".into()),
        };
        let has_tool_calls =
            matches!(object.get("tool_calls"), Some(Value::Array(calls)) if !calls.is_empty());
        if !object.contains_key("content") && !has_tool_calls {
            // Without this check a misspelt key renders an empty turn silently.
            return Err(format!(
                "\"content\" is missing (only an assistant message with tool_calls may omit it); keys found: {:?}",
                object.keys().collect::<Vec<_>>()
            ));
        }
        let content = content_text(object.get("content"))?;

        let mut reasoning_content = None;
        for field in REASONING_FIELDS {
            match object.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::String(text)) => {
                    reasoning_content = Some(text.clone());
                    break;
                }
                Some(other) => {
                    return Err(format!(
                        "\"{field}\" must be a string or null, found {other}"
                    ));
                }
            }
        }

        let tool_calls = match object.get("tool_calls") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(calls)) => {
                for (index, call) in calls.iter().enumerate() {
                    check_tool_call(call).map_err(|m| format!("tool_calls[{index}]: {m}"))?;
                }
                calls.clone()
            }
            Some(other) => {
                return Err(format!(
                    "\"tool_calls\" must be a list, found {}",
                    json_kind(other)
                ));
            }
        };

        let extra = object
            .iter()
            .filter(|(key, _)| {
                !matches!(key.as_str(), "role" | "content" | "tool_calls")
                    && !REASONING_FIELDS.contains(&key.as_str())
            })
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();

        Ok(ChatMessage {
            role,
            content,
            reasoning_content,
            tool_calls,
            extra,
        })
    }

    /// Converts the message to the JSON object the chat template receives.
    pub(crate) fn to_template_value(&self) -> Value {
        let mut object = Map::new();
        object.insert("role".into(), Value::String(self.role.clone()));
        object.insert("content".into(), Value::String(self.content.clone()));
        if let Some(reasoning) = &self.reasoning_content {
            object.insert("reasoning_content".into(), Value::String(reasoning.clone()));
        }
        if !self.tool_calls.is_empty() {
            object.insert("tool_calls".into(), Value::Array(self.tool_calls.clone()));
        }
        for (key, value) in &self.extra {
            object.insert(key.clone(), value.clone());
        }
        Value::Object(object)
    }
}

/// Parses a JSON list of tool schemas (objects); `what` names the source in errors.
pub fn parse_tools(json: &str, what: &str) -> Result<Vec<Value>, TokenizerError> {
    let value: Value = serde_json::from_str(json).map_err(|e| invalid(what, e.to_string()))?;
    let Some(items) = value.as_array() else {
        return Err(invalid(
            what,
            format!(
                "expected a JSON list of tool schema objects, found {}",
                json_kind(&value)
            ),
        ));
    };
    for (index, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(invalid(
                what,
                format!(
                    "tool {index}: expected a JSON schema object, found {}",
                    json_kind(item)
                ),
            ));
        }
    }
    Ok(items.clone())
}

/// Turns a `content` field into text: a string, `null`/missing as `""`, or a
/// list of `{"type": "text", "text": ...}` parts joined in order.
fn content_text(content: Option<&Value>) -> Result<String, String> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (index, part) in parts.iter().enumerate() {
                match (part.get("type").and_then(Value::as_str), part.get("text")) {
                    (Some("text"), Some(Value::String(part_text))) => text.push_str(part_text),
                    _ => {
                        return Err(format!(
                            "content[{index}] is not a text part {{\"type\": \"text\", \"text\": \"...\"}}; \
                             Qwen3 language models take text only, found {part}"
                        ));
                    }
                }
            }
            Ok(text)
        }
        Some(other) => Err(format!(
            "\"content\" must be a string, null or a list of text parts, found {}",
            json_kind(other)
        )),
    }
}

/// Checks that a tool call names its function and gives its arguments,
/// either directly or under `function`.
fn check_tool_call(call: &Value) -> Result<(), String> {
    let function = call.get("function").unwrap_or(call);
    let named = matches!(function.get("name"), Some(Value::String(_)));
    let has_arguments = matches!(
        function.get("arguments"),
        Some(Value::String(_) | Value::Object(_))
    );
    if named && has_arguments {
        return Ok(());
    }
    Err(format!(
        "expected {{\"type\": \"function\", \"function\": {{\"name\": string, \"arguments\": object or JSON string}}}}, found {call}"
    ))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn invalid(what: &str, message: String) -> TokenizerError {
    TokenizerError::InvalidMessages {
        what: what.to_string(),
        message,
    }
}
