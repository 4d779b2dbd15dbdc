//! Grammar-constrained decoding with llguidance: a compiler built once per model from its own
//! vocabulary, and per request a constraint that masks each step's logits and follows the
//! sampled tokens.

use std::sync::Arc;
use std::time::Instant;

use hearth_tokenizer::Tokenizer;
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use toktrie::{ApproximateTokEnv, SimpleVob, TokRxInfo, TokTrie};

/// What a reply must match.
#[derive(Debug, Clone, PartialEq)]
pub enum Grammar {
    /// A JSON Schema (llguidance options may sit in its `x-guidance` key).
    JsonSchema(serde_json::Value),
    /// llguidance's Lark-like syntax (it may embed `%json { schema }`).
    Lark(String),
}

#[derive(Debug, thiserror::Error)]
pub enum GrammarError {
    #[error("cannot build the grammar engine's vocabulary: {0}")]
    Vocabulary(String),
    #[error("{0}")]
    Compile(String),
}

/// Compiles grammars against one model's vocabulary. Clones share one token trie.
#[derive(Clone)]
pub struct GrammarCompiler {
    factory: Arc<ParserFactory>,
}

/// For a lazy grammar: given the reply so far, where the constrained part begins (a byte
/// offset into it) and the grammar for the reply from there on; None while it has not begun.
pub type Trigger = Box<dyn FnMut(&str) -> Option<(usize, Grammar)> + Send>;

impl GrammarCompiler {
    /// Builds the token trie from the tokenizer's bytes for every id below `vocab_size` (the
    /// model's logit count); special tokens are marked so that no text can spell them, and the
    /// ids that end generation are the grammar's end tokens.
    pub fn new(tokenizer: &Tokenizer, vocab_size: usize) -> Result<Self, GrammarError> {
        let words: Vec<Vec<u8>> = tokenizer
            .vocabulary(vocab_size)
            .into_iter()
            .map(|(bytes, special)| match special {
                true => [&[TokTrie::SPECIAL_TOKEN_MARKER], bytes.as_slice()].concat(),
                false => bytes,
            })
            .collect();
        let ends = tokenizer.end_of_generation();
        let first_end = *ends.first().ok_or_else(|| GrammarError::Vocabulary("the model has no end-of-text token".into()))?;
        let info = TokRxInfo::new(vocab_size as u32, first_end);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(ends);
        let env: toktrie::TokEnv = Arc::new(ApproximateTokEnv::new(trie));
        let mut factory = ParserFactory::new_simple(&env).map_err(|e| GrammarError::Vocabulary(e.to_string()))?;
        factory.quiet();
        Ok(GrammarCompiler { factory: Arc::new(factory) })
    }

    /// Compiles a grammar for one request; the error names what llguidance could not compile.
    pub fn compile(&self, grammar: &Grammar) -> Result<TokenConstraint, GrammarError> {
        let matcher = self.matcher(grammar)?;
        Ok(TokenConstraint { state: State::Active(Box::new(matcher)), mask: None, mask_seconds: Vec::new() })
    }

    /// A constraint that leaves the reply free until `trigger` says the constrained part has
    /// begun (as llama.cpp's lazy grammars do for tool calls). Should the grammar not compile
    /// or not accept what was already written, the reply simply stays free.
    pub fn lazy(&self, trigger: Trigger) -> TokenConstraint {
        let waiting = Waiting { compiler: self.clone(), trigger, reply: Vec::new() };
        TokenConstraint { state: State::Waiting(Box::new(waiting)), mask: None, mask_seconds: Vec::new() }
    }

    fn matcher(&self, grammar: &Grammar) -> Result<Matcher, GrammarError> {
        let top = match grammar {
            Grammar::JsonSchema(schema) => TopLevelGrammar::from_json_schema(schema.clone()),
            Grammar::Lark(text) => TopLevelGrammar::from_lark(text.clone()),
        };
        let parser = self.factory.create_parser(top).map_err(|e| GrammarError::Compile(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        match matcher.get_error() {
            Some(error) => Err(GrammarError::Compile(error)),
            None => Ok(matcher),
        }
    }

    /// A matcher for `grammar` that has consumed `bytes` (tokenized greedily: the grammar reads
    /// bytes, whatever tokens spell them).
    fn matcher_after(&self, grammar: &Grammar, bytes: &[u8]) -> Result<Matcher, String> {
        let mut matcher = self.matcher(grammar).map_err(|e| e.to_string())?;
        let tokens = self.factory.tok_env().tok_trie().greedy_tokenize(bytes);
        matcher.consume_tokens(&tokens).map_err(|e| e.to_string())?;
        Ok(matcher)
    }
}

/// A lazy grammar before its trigger.
struct Waiting {
    compiler: GrammarCompiler,
    trigger: Trigger,
    /// The reply's bytes so far.
    reply: Vec<u8>,
}

enum State {
    Active(Box<Matcher>),
    Waiting(Box<Waiting>),
    /// A lazy grammar that could not take over: the reply stays free.
    Free,
}

/// One request's grammar state.
pub struct TokenConstraint {
    state: State,
    /// The allowed tokens for the next step, once computed.
    mask: Option<SimpleVob>,
    /// Time spent computing each step's mask.
    mask_seconds: Vec<f32>,
}

impl std::fmt::Debug for TokenConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConstraint").field("steps", &self.mask_seconds.len()).finish()
    }
}

impl TokenConstraint {
    /// Computes the allowed tokens for the next step (the costly part, safe to run for several
    /// requests in parallel).
    pub fn prepare(&mut self) {
        if let (None, State::Active(matcher)) = (&self.mask, &mut self.state) {
            let start = Instant::now();
            self.mask = matcher.compute_mask().ok();
            self.mask_seconds.push(start.elapsed().as_secs_f32());
        }
    }

    /// Whether the grammar constrains the next token (a lazy one only after its trigger).
    pub fn is_active(&self) -> bool {
        matches!(self.state, State::Active(_))
    }

    /// Sets every logit the grammar forbids to -inf; an error when the grammar allows nothing.
    pub fn mask_logits(&mut self, logits: &mut [f32]) -> Result<(), String> {
        if !self.is_active() {
            return Ok(());
        }
        self.prepare();
        let mask = match self.mask.as_ref() {
            Some(mask) => mask,
            None => return Err(self.failure("cannot compute the next allowed tokens")),
        };
        let mut any = false;
        for (chunk, &bits) in logits.chunks_mut(32).zip(mask.as_slice()) {
            if bits == u32::MAX {
                any = true;
                continue;
            }
            for (j, logit) in chunk.iter_mut().enumerate() {
                if bits >> j & 1 == 0 {
                    *logit = f32::NEG_INFINITY;
                } else {
                    any = true;
                }
            }
        }
        match any {
            true => Ok(()),
            false => Err(self.failure("no token can continue the output")),
        }
    }

    /// Follows a sampled token.
    pub fn commit(&mut self, token: u32) -> Result<(), String> {
        self.mask = None;
        match &mut self.state {
            State::Active(matcher) => {
                matcher.consume_token(token).map_err(|e| format!("the grammar rejected token {token}: {e}"))
            }
            State::Waiting(waiting) => {
                if let Some(next) = waiting.follow(token) {
                    self.state = next;
                }
                Ok(())
            }
            State::Free => Ok(()),
        }
    }

    /// The grammar is complete: only an end token may follow.
    pub fn is_finished(&self) -> bool {
        matches!(&self.state, State::Active(matcher) if matcher.is_stopped())
    }

    /// Seconds spent on each step's mask so far.
    pub fn mask_seconds(&self) -> &[f32] {
        &self.mask_seconds
    }

    fn failure(&self, what: &str) -> String {
        let error = match &self.state {
            State::Active(matcher) => matcher.get_error(),
            _ => None,
        };
        match error {
            Some(error) => format!("constrained decoding stopped: {what} ({error})"),
            None => format!("constrained decoding stopped: {what}"),
        }
    }
}

impl Waiting {
    /// Adds a token to the reply; the next state once the trigger has fired.
    fn follow(&mut self, token: u32) -> Option<State> {
        let bytes = self.compiler.factory.tok_env().tok_trie().token(token);
        if bytes.first() == Some(&TokTrie::SPECIAL_TOKEN_MARKER) {
            return None; // special tokens are not text
        }
        self.reply.extend_from_slice(bytes);
        // the trigger reads the reply up to a character cut by the last token
        let text = match std::str::from_utf8(&self.reply) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&self.reply[..e.valid_up_to()]).unwrap_or_default(),
        };
        let (start, grammar) = (self.trigger)(text)?;
        let start = start.min(text.len());
        match self.compiler.matcher_after(&grammar, &self.reply[start..]) {
            Ok(matcher) => Some(State::Active(Box::new(matcher))),
            Err(error) => {
                tracing::warn!("the lazy grammar could not take over ({error}); the reply stays unconstrained");
                Some(State::Free)
            }
        }
    }
}
