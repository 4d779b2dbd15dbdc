//! `hearth generate`: one prompt, streamed to stdout, with a closing speed line.

use std::io::Write;
use std::ops::ControlFlow;

use clap::Args;
use hearth_engine::{generate, ChatMessage, StopConditions};

use crate::common::{ModelArgs, SamplingArgs};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt text
    #[arg(long, short = 'p')]
    prompt: String,
    /// Treat the prompt as a user message and apply the model's chat template
    #[arg(long)]
    chat: bool,
    /// Stop when this text is generated (repeatable)
    #[arg(long)]
    stop: Vec<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let bundle = args.model.load()?;
    let prompt = if args.chat {
        bundle.chat_prompt(&[ChatMessage { role: "user".into(), content: args.prompt.clone() }])?
    } else {
        bundle.tokenizer.encode(&args.prompt)?
    };
    let stop = StopConditions { max_tokens: args.sampling.max_tokens, stop_strings: args.stop.clone(), ..Default::default() };
    let mut stdout = std::io::stdout();
    let result = generate(&bundle.model, &bundle.tokenizer, &prompt, args.sampling.params(), &stop, bundle.context_length(), |event| {
        let _ = write!(stdout, "{}", event.text);
        let _ = stdout.flush();
        ControlFlow::Continue(())
    })?;
    println!();
    eprintln!(
        "prompt: {} tokens, {:.1} tok/s | generation: {} tokens, {:.1} tok/s | finish: {}",
        result.prompt_tokens,
        result.prefill_tokens_per_second(),
        result.tokens.len(),
        result.decode_tokens_per_second(),
        result.finish_reason.as_str()
    );
    Ok(())
}
