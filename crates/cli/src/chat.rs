//! `hearth chat`: an interactive terminal chat that keeps the conversation.

use std::io::{BufRead, Write};
use std::ops::ControlFlow;

use clap::Args;
use hearth_engine::{generate, ChatMessage, StopConditions};

use crate::common::{ModelArgs, SamplingArgs};

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A system prompt for the conversation
    #[arg(long)]
    system: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
}

pub fn run(args: ChatArgs) -> anyhow::Result<()> {
    let bundle = args.model.load()?;
    let mut messages: Vec<ChatMessage> =
        args.system.iter().map(|s| ChatMessage { role: "system".into(), content: s.clone() }).collect();
    let stop = StopConditions { max_tokens: args.sampling.max_tokens, ..Default::default() };
    eprintln!("hearth chat: type a message and press enter; /reset clears the conversation, /exit or Ctrl-D quits.");
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    loop {
        write!(stdout, "\n> ")?;
        stdout.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                messages.retain(|m| m.role == "system");
                continue;
            }
            text => messages.push(ChatMessage { role: "user".into(), content: text.to_string() }),
        }
        let prompt = bundle.chat_prompt(&messages)?;
        let result = generate(&bundle.model, &bundle.tokenizer, &prompt, args.sampling.params(), &stop, bundle.context_length(), |event| {
            let _ = write!(stdout, "{}", event.text);
            let _ = stdout.flush();
            ControlFlow::Continue(())
        });
        match result {
            Ok(result) => {
                writeln!(stdout)?;
                eprintln!("[{} tokens, {:.1} tok/s]", result.tokens.len(), result.decode_tokens_per_second());
                messages.push(ChatMessage { role: "assistant".into(), content: result.text });
            }
            Err(e) => {
                eprintln!("error: {e}");
                messages.pop();
            }
        }
    }
    Ok(())
}
