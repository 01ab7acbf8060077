//! Incremental detokenization for streamed generation.

use crate::error::TokenizerError;
use crate::tokenizer::Qwen3Tokenizer;

/// Turns token ids, fed one at a time, into text chunks.
///
/// A byte-level BPE token can end inside a UTF-8 character (CJK, emoji), so
/// decoding each token alone garbles text. The decoder keeps a short window of
/// ids, decodes it whole, and releases only text that ends on a complete
/// character. The concatenation of every chunk from [`StreamDecoder::push`]
/// and [`StreamDecoder::finish`] equals [`Qwen3Tokenizer::decode`] of all ids.
///
/// `tokenizers::DecodeStream` follows the same idea but has no way to flush
/// bytes that never complete a character, so it can lose the trailing U+FFFD
/// that a full decode prints.
#[derive(Debug)]
pub struct StreamDecoder<'a> {
    tokenizer: &'a Qwen3Tokenizer,
    skip_special_tokens: bool,
    /// Ids not yet released as text, preceded by the ids of the last released chunk.
    ids: Vec<u32>,
    /// Start of the last released chunk in `ids`; decoding from here gives a clean start.
    prefix_offset: usize,
    /// End of the released ids in `ids`.
    read_offset: usize,
}

impl<'a> StreamDecoder<'a> {
    pub(crate) fn new(tokenizer: &'a Qwen3Tokenizer, skip_special_tokens: bool) -> Self {
        StreamDecoder {
            tokenizer,
            skip_special_tokens,
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
        }
    }

    /// Adds one id; returns the text it completes, or `None` while a character
    /// is still incomplete (or the id decodes to nothing, as a skipped special token).
    pub fn push(&mut self, id: u32) -> Result<Option<String>, TokenizerError> {
        self.ids.push(id);
        let prefix_text = self.decode(self.prefix_offset, self.read_offset)?;
        let full_text = self.decode(self.prefix_offset, self.ids.len())?;

        // Hold back while the window ends in a replacement character: the next
        // token may complete the bytes. `finish` releases it if none does.
        if full_text.len() <= prefix_text.len() || full_text.ends_with(char::REPLACEMENT_CHARACTER)
        {
            return Ok(None);
        }
        let new_text = text_after(&full_text, &prefix_text);
        self.advance();
        Ok(Some(new_text))
    }

    /// Releases text held back for incomplete characters, as a full decode
    /// would print it (with U+FFFD for bytes that never formed a character).
    pub fn finish(&mut self) -> Result<Option<String>, TokenizerError> {
        let prefix_text = self.decode(self.prefix_offset, self.read_offset)?;
        let full_text = self.decode(self.prefix_offset, self.ids.len())?;
        self.advance();
        let new_text = text_after(&full_text, &prefix_text);
        Ok((!new_text.is_empty()).then_some(new_text))
    }

    /// Marks every id as released and drops ids no longer needed as context.
    fn advance(&mut self) {
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        self.ids.drain(..self.prefix_offset);
        self.read_offset -= self.prefix_offset;
        self.prefix_offset = 0;
    }

    fn decode(&self, start: usize, end: usize) -> Result<String, TokenizerError> {
        self.tokenizer
            .decode(&self.ids[start..end], self.skip_special_tokens)
    }
}

/// Returns the part of `full` after the text already released.
///
/// With Qwen3's byte-level decoder `released` is always a prefix of `full`;
/// for a decoder that rewrites earlier text, the text after the longest common
/// prefix is returned, because released text cannot be taken back.
fn text_after(full: &str, released: &str) -> String {
    if let Some(rest) = full.strip_prefix(released) {
        return rest.to_string();
    }
    let common = full
        .char_indices()
        .zip(released.chars())
        .find(|((_, a), b)| a != b)
        .map_or(full.len().min(released.len()), |((index, _), _)| index);
    full.get(common..).unwrap_or_default().to_string()
}
