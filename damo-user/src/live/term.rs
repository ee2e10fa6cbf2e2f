//! The terminal side of `top`: raw mode and the alternate screen (restored on every exit,
//! panics included), keys, and redraws at each collector tick.

use std::{
    fs::File,
    io,
    os::fd::{AsFd, AsRawFd, OwnedFd, RawFd},
    sync::atomic::{AtomicBool, Ordering},
    sync::mpsc::{Receiver, TryRecvError},
    time::Duration,
};

use anyhow::{Context, Result};
use ratatui::{
    backend::CrosstermBackend,
    crossterm::{
        cursor::Show,
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

/// Raw mode and the alternate screen while it lives. The UI draws on its own descriptor of
/// the terminal; stdout and stderr point at /dev/null meanwhile, so neither the watched
/// command nor the recorder's status line writes over the screen.
struct Screen {
    terminal: Terminal<CrosstermBackend<File>>,
    /// The original stdout and stderr, put back on drop.
    saved: [OwnedFd; 2],
}

impl Screen {
    fn open() -> Result<Self> {
        let tty = io::stdout().as_fd().try_clone_to_owned().context("cannot duplicate stdout")?;
        let saved = [tty.try_clone().context("cannot duplicate stdout")?, io::stderr().as_fd().try_clone_to_owned().context("cannot duplicate stderr")?];
        let null = File::options().write(true).open("/dev/null").context("cannot open /dev/null")?;
        for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
            // SAFETY: dup2 onto the standard descriptors, which stay open throughout.
            if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
                return Err(io::Error::last_os_error()).context("cannot redirect the standard output");
            }
        }
        // From here on, the screen's drop (or the panic hook) puts everything back.
        let fds = [saved[0].as_raw_fd(), saved[1].as_raw_fd()];
        SHOWING.store(true, Ordering::SeqCst);
        let terminal = match Terminal::new(CrosstermBackend::new(File::from(tty))) {
            Ok(terminal) => terminal,
            Err(e) => {
                SHOWING.store(false, Ordering::SeqCst);
                put_back(fds);
                return Err(e).context("cannot draw on the terminal");
            }
        };
        let screen = Self { terminal, saved };
        enable_raw_mode().context("cannot put the terminal in raw mode")?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if SHOWING.swap(false, Ordering::SeqCst) {
                put_back(fds);
            }
            previous(info);
        }));
        let mut screen = screen;
        execute!(screen.terminal.backend_mut(), EnterAlternateScreen).context("cannot switch to the alternate screen")?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if SHOWING.swap(false, Ordering::SeqCst) {
            put_back([self.saved[0].as_raw_fd(), self.saved[1].as_raw_fd()]);
        }
    }
}

/// Whether the UI holds the terminal (the panic hook must put it back).
static SHOWING: AtomicBool = AtomicBool::new(false);

/// Leaves raw mode and the alternate screen, and points stdout and stderr back at `saved`.
fn put_back(saved: [RawFd; 2]) {
    let _ = disable_raw_mode();
    for (fd, saved) in [libc::STDOUT_FILENO, libc::STDERR_FILENO].into_iter().zip(saved) {
        // SAFETY: dup2 of a descriptor the screen owns onto a standard one.
        unsafe { libc::dup2(saved, fd) };
    }
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
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
            screen.terminal.draw(|f| ui::draw(f, model, &view)).context("cannot draw on the terminal")?;
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
