//! A small XML well-formedness checker for the diagrams: balanced tags, one root, quoted
//! attributes without `<` or duplicates, and `&` only in the predefined entities or character
//! references. Enough to catch an unescaped string or an unclosed element; not a full parser.

/// Checks `document`; the error says what is wrong and where.
pub fn check_well_formed(document: &str) -> Result<(), String> {
    let mut rest = document;
    if let Some(after_declaration) = rest.strip_prefix("<?xml") {
        let end = after_declaration
            .find("?>")
            .ok_or("unterminated XML declaration")?;
        rest = &after_declaration[end + 2..];
    }
    let mut open: Vec<String> = Vec::new();
    let mut roots = 0;
    while let Some(start) = rest.find('<') {
        check_text(&rest[..start])?;
        if open.is_empty() && !rest[..start].trim().is_empty() {
            return Err(format!("text outside the root: {:?}", &rest[..start]));
        }
        let end = rest[start..].find('>').ok_or("unterminated tag")? + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let expected = open.pop().ok_or(format!("</{name}> closes nothing"))?;
            if expected != name.trim() {
                return Err(format!("</{name}> closes <{expected}>"));
            }
            continue;
        }
        if open.is_empty() {
            roots += 1;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.strip_suffix('/').unwrap_or(tag);
        let name = check_tag(tag)?;
        if !self_closing {
            open.push(name);
        }
    }
    check_text(rest)?;
    if !rest.trim().is_empty() {
        return Err(format!("text after the root: {rest:?}"));
    }
    if let Some(name) = open.pop() {
        return Err(format!("<{name}> is never closed"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

/// Checks a start tag's inside (without `<`, `>` and a closing `/`); returns its name.
fn check_tag(tag: &str) -> Result<String, String> {
    let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
    let name = &tag[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
    {
        return Err(format!("bad element name in <{tag}>"));
    }
    let mut attributes = &tag[name_end..];
    let mut seen = Vec::new();
    loop {
        attributes = attributes.trim_start();
        if attributes.is_empty() {
            return Ok(name.to_string());
        }
        let equals = attributes
            .find('=')
            .ok_or(format!("attribute without value in <{tag}>"))?;
        let attribute = &attributes[..equals];
        if attribute.is_empty()
            || !attribute
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
        {
            return Err(format!("bad attribute name {attribute:?} in <{tag}>"));
        }
        if seen.contains(&attribute) {
            return Err(format!("attribute {attribute} twice in <{tag}>"));
        }
        seen.push(attribute);
        let value = attributes[equals + 1..]
            .strip_prefix('"')
            .ok_or(format!("unquoted attribute {attribute} in <{tag}>"))?;
        let close = value
            .find('"')
            .ok_or(format!("unterminated attribute in <{tag}>"))?;
        if value[..close].contains('<') {
            return Err(format!("'<' in attribute {attribute} of <{tag}>"));
        }
        check_text(&value[..close])?;
        attributes = &value[close + 1..];
        if !attributes.is_empty() && !attributes.starts_with(char::is_whitespace) {
            return Err(format!("no space after attribute {attribute} in <{tag}>"));
        }
    }
}

/// Checks that every `&` in character data starts an entity or character reference.
fn check_text(text: &str) -> Result<(), String> {
    if text.contains('>') && text.contains("]]>") {
        return Err("']]>' in text".to_string());
    }
    for (index, _) in text.match_indices('&') {
        let reference = &text[index + 1..];
        let end = reference.find(';').ok_or(format!("bare '&' in {text:?}"))?;
        let name = &reference[..end];
        let is_entity = ["amp", "lt", "gt", "quot", "apos"].contains(&name);
        let is_character = name
            .strip_prefix('#')
            .is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()));
        if !is_entity && !is_character {
            return Err(format!("bad reference &{name}; in {text:?}"));
        }
    }
    Ok(())
}

#[test]
fn the_checker_rejects_what_it_should() {
    assert!(check_well_formed(
        "<?xml version=\"1.0\"?>\n<svg a=\"1\"><g/><text>x &amp; y</text></svg>\n"
    )
    .is_ok());
    for bad in [
        "<svg><g></svg>",
        "<svg></g>",
        "<svg><text>a & b</text></svg>",
        "<svg><text>a &bogus; b</text></svg>",
        "<svg a=\"<\"/>",
        "<svg a=\"1\" a=\"2\"/>",
        "<svg a=1/>",
        "<svg/><svg/>",
        "<svg>",
    ] {
        assert!(check_well_formed(bad).is_err(), "accepted {bad}");
    }
}
