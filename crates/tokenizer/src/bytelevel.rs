//! GPT-2's byte-level alphabet: the printable character that stands for each byte in vocabularies.

/// The byte a byte-level vocabulary character stands for, or None for other characters.
pub fn char_to_byte(c: char) -> Option<u8> {
    let code = c as u32;
    if is_printable_byte(code) {
        return Some(code as u8);
    }
    // The other 68 bytes map, in increasing order, to 256, 257, ...
    let offset = code.checked_sub(256)?;
    (0u32..=255).filter(|&b| !is_printable_byte(b)).nth(offset as usize).map(|b| b as u8)
}

/// Bytes that stand for themselves: '!'..='~', '¡'..='¬', '®'..='ÿ'.
fn is_printable_byte(b: u32) -> bool {
    (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b)
}

#[cfg(test)]
mod tests {
    use super::char_to_byte;

    #[test]
    fn maps_the_gpt2_alphabet() {
        assert_eq!(char_to_byte('a'), Some(b'a'));
        assert_eq!(char_to_byte('Ġ'), Some(b' ')); // U+0120
        assert_eq!(char_to_byte('Ċ'), Some(b'\n')); // U+010A
        assert_eq!(char_to_byte('\u{100}'), Some(0));
        assert_eq!(char_to_byte('\u{143}'), Some(0xAD));
        assert_eq!(char_to_byte('\u{144}'), None);
    }
}
