//! The `tojson` filter as `transformers` defines it for chat templates:
//! Python's `json.dumps(value, ensure_ascii=False, indent=None, separators=None,
//! sort_keys=False)`, with the same keyword arguments.
//!
//! It differs from minijinja's built-in `tojson`, which escapes `&`, `'`, `<`
//! and `>` for HTML and uses compact separators: Qwen3 was trained on tool
//! schemas rendered by Python, so the prompt must contain the same bytes.

use minijinja::value::{Kwargs, Value as JinjaValue};
use minijinja::{Error, ErrorKind};
use serde_json::{Map, Number, Value};

/// Options of Python's `json.dumps` that the filter accepts.
struct DumpOptions {
    ensure_ascii: bool,
    indent: Option<String>,
    item_separator: String,
    key_separator: String,
    sort_keys: bool,
}

/// Implements the minijinja filter `value | tojson(ensure_ascii=false, indent=none, separators=none, sort_keys=false)`.
pub(crate) fn tojson_filter(value: JinjaValue, kwargs: Kwargs) -> Result<JinjaValue, Error> {
    let options = DumpOptions::from_kwargs(&kwargs)?;
    kwargs.assert_all_used()?;

    let json = serde_json::to_value(&value).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            "tojson: value cannot be written as JSON",
        )
        .with_source(e)
    })?;

    let mut out = String::new();
    write_value(&json, &options, 0, &mut out);
    Ok(JinjaValue::from(out))
}

impl DumpOptions {
    fn from_kwargs(kwargs: &Kwargs) -> Result<Self, Error> {
        let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
        let sort_keys: Option<bool> = kwargs.get("sort_keys")?;

        // Python accepts an int (that many spaces) or a string as indent.
        let indent_value: Option<JinjaValue> = kwargs.get("indent")?;
        let indent = match indent_value {
            None => None,
            Some(v) if v.is_none() => None,
            Some(v) => match (v.as_i64(), v.as_str()) {
                (Some(n), _) => Some(" ".repeat(n.max(0) as usize)),
                (None, Some(s)) => Some(s.to_string()),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("tojson: indent must be an integer or a string, found {v}"),
                    ));
                }
            },
        };

        // Python's defaults: (", ", ": ") without indent, (",", ": ") with it.
        let separators: Option<JinjaValue> = kwargs.get("separators")?;
        let default_item = if indent.is_some() { "," } else { ", " };
        let (item_separator, key_separator) = match separators {
            None => (default_item.to_string(), ": ".to_string()),
            Some(v) if v.is_none() => (default_item.to_string(), ": ".to_string()),
            Some(v) => {
                let parts: Vec<JinjaValue> = v.try_iter()?.collect();
                match parts.as_slice() {
                    [item, key] if item.as_str().is_some() && key.as_str().is_some() => (
                        item.as_str().unwrap_or_default().to_string(),
                        key.as_str().unwrap_or_default().to_string(),
                    ),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::InvalidOperation,
                            format!("tojson: separators must be a pair of strings, found {v}"),
                        ));
                    }
                }
            }
        };

        Ok(DumpOptions {
            ensure_ascii: ensure_ascii.unwrap_or(false),
            indent,
            item_separator,
            key_separator,
            sort_keys: sort_keys.unwrap_or(false),
        })
    }
}

fn write_value(value: &Value, options: &DumpOptions, level: usize, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_string(text, options.ensure_ascii, out),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(&options.item_separator);
                }
                write_newline_indent(options, level + 1, out);
                write_value(item, options, level + 1, out);
            }
            write_newline_indent(options, level, out);
            out.push(']');
        }
        Value::Object(map) => write_object(map, options, level, out),
    }
}

fn write_object(map: &Map<String, Value>, options: &DumpOptions, level: usize, out: &mut String) {
    if map.is_empty() {
        out.push_str("{}");
        return;
    }

    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    if options.sort_keys {
        // Python compares str by code point, which is the UTF-8 byte order.
        entries.sort_by(|a, b| a.0.cmp(b.0));
    }

    out.push('{');
    for (index, (key, item)) in entries.into_iter().enumerate() {
        if index > 0 {
            out.push_str(&options.item_separator);
        }
        write_newline_indent(options, level + 1, out);
        write_string(key, options.ensure_ascii, out);
        out.push_str(&options.key_separator);
        write_value(item, options, level + 1, out);
    }
    write_newline_indent(options, level, out);
    out.push('}');
}

fn write_newline_indent(options: &DumpOptions, level: usize, out: &mut String) {
    if let Some(indent) = &options.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(indent);
        }
    }
}

/// NOTE: serde_json reads integers outside the i64/u64 range, and `-0`, as
/// floats, so such values in tool schemas print as `1e+20` or `-0.0` where
/// Python prints the exact integer.
///
/// Writes a number as Python's `json.dumps` does: integers as they are, floats
/// with `float.__repr__` (shortest round-trip digits, exponent form below 1e-4
/// and from 1e16 on, a `.0` on integral values).
fn write_number(number: &Number, out: &mut String) {
    if let Some(float) = number.as_f64().filter(|_| number.is_f64()) {
        write_python_float(float, out);
    } else {
        out.push_str(&number.to_string());
    }
}

fn write_python_float(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }

    // `{:e}` gives the shortest round-trip digits, such as "1.5e-7" or "1e16".
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);

    if (-4..16).contains(&exponent) {
        let plain = format!("{value}");
        out.push_str(&plain);
        if !plain.contains('.') {
            out.push_str(".0");
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        out.push_str(mantissa);
        out.push('e');
        out.push(sign);
        out.push_str(&format!("{:02}", exponent.abs()));
    }
}

/// Writes a JSON string literal with Python's escapes: `\"`, `\\`, `\n`, `\r`,
/// `\t`, `\b`, `\f`, other control characters as `\u00XX`, and with
/// `ensure_ascii` every non-ASCII character as `\uXXXX` (surrogate pairs above
/// U+FFFF).
fn write_string(text: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ensure_ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python_float(value: f64) -> String {
        let mut out = String::new();
        write_python_float(value, &mut out);
        out
    }

    // Expected strings are Python 3.11's repr() of the same floats.
    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (123456789012345.0, "123456789012345.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.2345e-7, "1.2345e-07"),
            (0.0, "0.0"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float(value), expected, "repr of {value:e}");
        }
    }

    #[test]
    fn string_escapes_match_python() {
        let mut out = String::new();
        write_string("a\"b\\c\n\t\u{1}&<'>é中😀\u{7f}", false, &mut out);
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\t\\u0001&<'>é中😀\u{7f}\"");
    }

    #[test]
    fn ensure_ascii_uses_surrogate_pairs() {
        let mut out = String::new();
        write_string("é😀", true, &mut out);
        assert_eq!(out, "\"\\u00e9\\ud83d\\ude00\"");
    }
}
