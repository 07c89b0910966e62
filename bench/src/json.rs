//! One JSON object per line, written by hand (no serde for a flat record).

use std::fmt::Write;

/// A flat JSON object, fields in insertion order.
#[derive(Default)]
pub struct Obj {
    fields: Vec<(String, String)>,
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for ch in s.chars() {
        match ch {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

impl Obj {
    pub fn new() -> Obj {
        Obj::default()
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Obj {
        self.fields.push((k.into(), quote(v)));
        self
    }

    pub fn int(&mut self, k: &str, v: i64) -> &mut Obj {
        self.fields.push((k.into(), v.to_string()));
        self
    }

    /// A number; NaN and infinities become null.
    pub fn num(&mut self, k: &str, v: f64) -> &mut Obj {
        let s = if v.is_finite() { format!("{v:.4}") } else { "null".into() };
        self.fields.push((k.into(), s));
        self
    }

    /// The object on one line.
    pub fn line(&self) -> String {
        let body: Vec<String> = self.fields.iter().map(|(k, v)| format!("{}: {}", quote(k), v)).collect();
        format!("{{{}}}", body.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_nulls() {
        let mut o = Obj::new();
        o.str("a", "x\"y\n").num("b", f64::NAN).int("c", -3);
        assert_eq!(o.line(), r#"{"a": "x\"y\u000a", "b": null, "c": -3}"#);
    }
}
