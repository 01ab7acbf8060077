//! Separation of `<think>…</think>` reasoning from the answer in streamed text.

/// Opening tag of Qwen3 reasoning.
pub const THINK_START: &str = "<think>";
/// Closing tag of Qwen3 reasoning.
pub const THINK_END: &str = "</think>";

/// A piece of streamed output, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text inside `<think>…</think>`.
    Reasoning(String),
    /// Text after `</think>`, or all text when the model did not reason.
    Answer(String),
}

/// The whole output, split, once the stream has ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitOutput {
    /// Reasoning without the tags and without the newlines around it, as the
    /// Qwen3 chat template writes it back into history.
    pub reasoning: String,
    /// The answer without the newlines that follow `</think>`.
    pub answer: String,
    /// Whether reasoning was opened and never closed (output cut off before `</think>`).
    pub reasoning_unterminated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace seen yet: the output may still open with `<think>`.
    Start,
    /// Inside reasoning, waiting for `</think>`.
    Reasoning,
    /// After reasoning, or in output without any.
    Answer,
}

/// Splits streamed model output into reasoning and answer.
///
/// Feed text chunks as they are decoded; tags may be split across chunks. A
/// tag is consumed, never emitted. Create it with
/// [`ReasoningSplitter::for_prompt`] so that a `<think>` at the end of the
/// prompt (where the output then contains only `</think>`) is accounted for.
#[derive(Debug, Clone)]
pub struct ReasoningSplitter {
    state: State,
    /// Text held back because it may be the start of a tag.
    pending: String,
    reasoning: String,
    answer: String,
    saw_reasoning: bool,
}

impl Default for ReasoningSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl ReasoningSplitter {
    /// Creates a splitter for output that may open with `<think>`.
    pub fn new() -> Self {
        ReasoningSplitter {
            state: State::Start,
            pending: String::new(),
            reasoning: String::new(),
            answer: String::new(),
            saw_reasoning: false,
        }
    }

    /// Creates a splitter for output that starts inside reasoning, because the
    /// prompt already ended with `<think>`.
    pub fn inside_reasoning() -> Self {
        ReasoningSplitter {
            state: State::Reasoning,
            saw_reasoning: true,
            ..Self::new()
        }
    }

    /// Creates the splitter that fits a rendered prompt: inside reasoning when
    /// the prompt's last `<think>` is not followed by `</think>`.
    pub fn for_prompt(prompt: &str) -> Self {
        let opened = prompt.rfind(THINK_START);
        let closed = prompt.rfind(THINK_END);
        match (opened, closed) {
            (Some(open), Some(close)) if open > close => Self::inside_reasoning(),
            (Some(_), None) => Self::inside_reasoning(),
            _ => Self::new(),
        }
    }

    /// Adds a chunk of output text and returns the segments it completes.
    pub fn push(&mut self, chunk: &str) -> Vec<Segment> {
        self.pending.push_str(chunk);
        let mut segments = Vec::new();

        loop {
            match self.state {
                State::Start => {
                    let trimmed = self.pending.trim_start();
                    if let Some(rest) = trimmed.strip_prefix(THINK_START) {
                        self.pending = rest.to_string();
                        self.state = State::Reasoning;
                        self.saw_reasoning = true;
                    } else if THINK_START.starts_with(trimmed) {
                        // Only whitespace or a partial `<think>` so far.
                        break;
                    } else {
                        self.state = State::Answer;
                    }
                }
                State::Reasoning => match self.pending.find(THINK_END) {
                    Some(index) => {
                        let before = self.pending[..index].to_string();
                        self.pending = self.pending[index + THINK_END.len()..].to_string();
                        self.emit(Segment::Reasoning(before), &mut segments);
                        self.state = State::Answer;
                    }
                    None => {
                        let keep = partial_tag_len(&self.pending, THINK_END);
                        let ready = self.pending[..self.pending.len() - keep].to_string();
                        self.pending.drain(..self.pending.len() - keep);
                        self.emit(Segment::Reasoning(ready), &mut segments);
                        break;
                    }
                },
                State::Answer => {
                    let ready = std::mem::take(&mut self.pending);
                    self.emit(Segment::Answer(ready), &mut segments);
                    break;
                }
            }
        }
        segments
    }

    /// Ends the stream: releases held-back text and returns the last segments
    /// with the whole output split.
    pub fn finish(&mut self) -> (Vec<Segment>, SplitOutput) {
        let mut segments = Vec::new();
        let held = std::mem::take(&mut self.pending);
        let unterminated = self.state == State::Reasoning;
        match self.state {
            State::Reasoning => self.emit(Segment::Reasoning(held), &mut segments),
            State::Start | State::Answer => self.emit(Segment::Answer(held), &mut segments),
        }
        self.state = State::Answer;

        let output = SplitOutput {
            reasoning: self.reasoning.trim_matches('\n').to_string(),
            answer: if self.saw_reasoning {
                self.answer.trim_start_matches('\n').to_string()
            } else {
                self.answer.clone()
            },
            reasoning_unterminated: unterminated,
        };
        (segments, output)
    }

    /// Returns whether the stream is inside reasoning now.
    pub fn in_reasoning(&self) -> bool {
        self.state == State::Reasoning
    }

    fn emit(&mut self, segment: Segment, segments: &mut Vec<Segment>) {
        match &segment {
            Segment::Reasoning(text) if !text.is_empty() => self.reasoning.push_str(text),
            Segment::Answer(text) if !text.is_empty() => self.answer.push_str(text),
            _ => return,
        }
        segments.push(segment);
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `tag`.
fn partial_tag_len(text: &str, tag: &str) -> usize {
    (1..tag.len())
        .rev()
        .find(|&len| {
            text.len() >= len
                && text.is_char_boundary(text.len() - len)
                && tag.starts_with(&text[text.len() - len..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut splitter: ReasoningSplitter, chunks: &[&str]) -> (Vec<Segment>, SplitOutput) {
        let mut segments = Vec::new();
        for chunk in chunks {
            segments.extend(splitter.push(chunk));
        }
        let (last, output) = splitter.finish();
        segments.extend(last);
        (segments, output)
    }

    fn joined(segments: &[Segment], reasoning: bool) -> String {
        segments
            .iter()
            .filter_map(|s| match (s, reasoning) {
                (Segment::Reasoning(t), true) | (Segment::Answer(t), false) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn splits_think_block_from_answer() {
        let (segments, output) = run(
            ReasoningSplitter::new(),
            &["<think>\nLet me add.\n</think>\n\n", "2 + 2 = 4."],
        );
        assert_eq!(joined(&segments, true), "\nLet me add.\n");
        assert_eq!(joined(&segments, false), "\n\n2 + 2 = 4.");
        assert_eq!(output.reasoning, "Let me add.");
        assert_eq!(output.answer, "2 + 2 = 4.");
        assert!(!output.reasoning_unterminated);
    }

    #[test]
    fn think_opened_in_prompt() {
        let prompt = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n";
        let (segments, output) = run(
            ReasoningSplitter::for_prompt(prompt),
            &["Thinking.", "</think>\n\nHello!"],
        );
        assert_eq!(joined(&segments, true), "Thinking.");
        assert_eq!(output.reasoning, "Thinking.");
        assert_eq!(output.answer, "Hello!");
    }

    #[test]
    fn closed_think_in_prompt_starts_fresh() {
        let prompt = "<|im_start|>assistant\n<think>\n\n</think>\n\n";
        let (segments, output) = run(ReasoningSplitter::for_prompt(prompt), &["Hello!"]);
        assert_eq!(segments, vec![Segment::Answer("Hello!".into())]);
        assert_eq!(output.reasoning, "");
    }

    #[test]
    fn tags_split_across_chunks() {
        let chunks = ["<", "thi", "nk>", "a", "b</", "thin", "k", ">", "c"];
        let (segments, output) = run(ReasoningSplitter::new(), &chunks);
        assert_eq!(joined(&segments, true), "ab");
        assert_eq!(joined(&segments, false), "c");
        assert_eq!(output.answer, "c");
    }

    #[test]
    fn cut_off_before_think_end() {
        let (segments, output) = run(
            ReasoningSplitter::new(),
            &["<think>\nStill going", " and </thi"],
        );
        assert_eq!(joined(&segments, true), "\nStill going and </thi");
        assert_eq!(joined(&segments, false), "");
        assert!(output.reasoning_unterminated);
        assert_eq!(output.reasoning, "Still going and </thi");
    }

    #[test]
    fn output_without_reasoning_is_answer() {
        let (segments, output) = run(ReasoningSplitter::new(), &["  <b>Hi</b>", " there"]);
        assert_eq!(joined(&segments, false), "  <b>Hi</b> there");
        assert_eq!(output.answer, "  <b>Hi</b> there");
        assert!(!output.reasoning_unterminated);
    }

    #[test]
    fn partial_open_tag_at_end_is_answer() {
        let (_, output) = run(ReasoningSplitter::new(), &["<thi"]);
        assert_eq!(output.answer, "<thi");
    }

    #[test]
    fn multibyte_text_before_partial_tag() {
        let (segments, _) = run(
            ReasoningSplitter::inside_reasoning(),
            &["思考中<", "/think>答案"],
        );
        assert_eq!(joined(&segments, true), "思考中");
        assert_eq!(joined(&segments, false), "答案");
    }
}
