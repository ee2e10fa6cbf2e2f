//! The terminal side of `top`: raw mode and the alternate screen (restored on every exit,
//! panics included), keys, and redraws at each collector tick.

use std::{
    io::{self, Stdout},
    sync::mpsc::{Receiver, TryRecvError},
    time::Duration,
};

use anyhow::{Context, Result};
use ratatui::{
    backend::CrosstermBackend,
    crossterm::{
        event::{self, Event, KeyCode, KeyEventKind, KeyModifiers},
        execute,
        terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen},
    },
    Terminal,
};

use super::{
    feed::Feed,
    model::LiveModel,
    ui::{self, ViewState, FILTERS},
};

/// How long a key is waited for before the stream is read again.
const KEY_POLL: Duration = Duration::from_millis(100);

/// Raw mode and the alternate screen while it lives.
struct Screen(Terminal<CrosstermBackend<Stdout>>);

impl Screen {
    fn open() -> Result<Self> {
        enable_raw_mode().context("cannot put the terminal in raw mode")?;
        // From here on, a panic leaves the terminal as it found it before printing.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        execute!(io::stdout(), EnterAlternateScreen).context("cannot switch to the alternate screen")?;
        let terminal = Terminal::new(CrosstermBackend::new(io::stdout())).context("cannot draw on the terminal")?;
        Ok(Self(terminal))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
        let _ = self.0.show_cursor();
    }
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen);
}

/// Shows the stream until `q` (or Ctrl-C), then calls `quit` (which stops the recording).
/// `ended` is called once when the stream ends: `Err` leaves at once with that error.
pub fn run(feed: Receiver<Feed>, model: &mut LiveModel, quit: impl FnOnce(), ended: impl FnOnce() -> Result<String>, write: impl Fn(&LiveModel) -> Result<String>) -> Result<()> {
    let mut screen = Screen::open()?;
    let mut view = ViewState::default();
    let mut ended = Some(ended);
    let mut redraw = true;
    loop {
        loop {
            match feed.try_recv() {
                Ok(item) => redraw |= model.push(item) && !view.paused,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if let Some(ended) = ended.take() {
                        model.refresh();
                        view.message = Some(ended()?);
                        redraw = true;
                    }
                    break;
                }
            }
        }
        if redraw {
            screen.0.draw(|f| ui::draw(f, model, &view)).context("cannot draw on the terminal")?;
            redraw = false;
        }
        if !event::poll(KEY_POLL)? {
            continue;
        }
        let Event::Key(key) = event::read()? else {
            redraw = true; // a resize
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        match key.code {
            KeyCode::Char('q') => break,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => break,
            KeyCode::Char('p') => view.paused = !view.paused,
            KeyCode::Up => view.move_band(model, false),
            KeyCode::Down => view.move_band(model, true),
            KeyCode::Tab => view.next_target(model),
            KeyCode::Char('f') => view.filter = (view.filter + 1) % FILTERS.len(),
            KeyCode::Char('w') => view.message = Some(write(model).unwrap_or_else(|e| format!("w: {e:#}"))),
            _ => continue,
        }
        redraw = true;
    }
    quit();
    drop(screen);
    // The recording ends (and its kdamonds stop) before we return.
    for item in feed.iter() {
        model.push(item);
    }
    if let Some(ended) = ended {
        ended()?;
    }
    Ok(())
}
