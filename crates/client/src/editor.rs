//! A small line editor: keystrokes in, an edited line and history out, plus the text
//! that redraws it. No I/O: [`crate::console`] writes what [`Editor::render`] returns,
//! and [`crate::sys`] puts the terminal in raw mode.
//!
//! Keys: printable text (UTF-8, so Hangul from an input method works), ←/→, Home/End,
//! Ctrl-A/E/B/F, Alt-B/F and Ctrl-←/→ (by word), Backspace, Delete, Ctrl-K/U/W (kill
//! to end / to start / word), ↑/↓ and Ctrl-P/N (history), Ctrl-L (clear screen),
//! Enter, Ctrl-D (end of input on an empty line, else delete), Ctrl-C (clear the line,
//! or quit on an empty one). Other control keys and unknown escape sequences are
//! ignored, so nothing typed can put a control character into a chat message.
//!
//! The line is drawn on one terminal row; a line wider than the terminal scrolls
//! sideways to keep the cursor visible, with `<` / `>` at an edge where text is
//! hidden, which keeps redraws simple and correct when messages are printed above
//! it (and after a resize: the row is just drawn again at the new width). Widths follow East Asian Width (Hangul and CJK take
//! two columns, combining marks none) from a small built-in table.

/// What a key (or several) asked the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Enter was pressed on this line (already cleared from the editor).
    Submit(String),
    /// Ctrl-D on an empty line.
    Eof,
    /// Ctrl-C on an empty line.
    Interrupt,
    /// Ctrl-L: clear the screen, then redraw.
    ClearScreen,
}

/// The most lines kept in history.
const HISTORY_LIMIT: usize = 1000;

/// The longest escape sequence parameter list we keep; longer ones are cut.
const MAX_ESCAPE_LEN: usize = 16;

/// Where the escape-sequence parser is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Escape {
    /// Not in a sequence.
    None,
    /// After `ESC`.
    Start,
    /// After `ESC [`, with the parameter bytes so far.
    Csi(Vec<u8>),
    /// After `ESC O`.
    Ss3,
}

/// The line being edited, its history, and the state of a half-received key.
#[derive(Debug)]
pub struct Editor {
    line: Vec<char>,
    /// Index into `line` (in chars), `0..=line.len()`.
    cursor: usize,
    history: Vec<String>,
    /// Which history entry is shown; `history.len()` means the line being typed.
    history_index: usize,
    /// The line being typed, kept while browsing history.
    draft: Vec<char>,
    /// Bytes of a UTF-8 character not yet complete.
    utf8: Vec<u8>,
    escape: Escape,
    /// The last byte was `\r`: a `\n` right after it is the same Enter (pastes).
    after_cr: bool,
    /// Lines added to history since [`Editor::take_recorded`] last ran (to be saved).
    recorded: Vec<String>,
}

impl Default for Editor {
    fn default() -> Self {
        Self::new()
    }
}

impl Editor {
    /// An empty editor with no history.
    pub fn new() -> Self {
        Self {
            line: Vec::new(),
            cursor: 0,
            history: Vec::new(),
            history_index: 0,
            draft: Vec::new(),
            utf8: Vec::new(),
            escape: Escape::None,
            after_cr: false,
            recorded: Vec::new(),
        }
    }

    /// An empty editor whose history starts with `lines` (oldest first; the last
    /// [`HISTORY_LIMIT`] are kept).
    pub fn with_history(mut lines: Vec<String>) -> Self {
        let excess = lines.len().saturating_sub(HISTORY_LIMIT);
        lines.drain(..excess);
        let mut editor = Self::new();
        editor.history_index = lines.len();
        editor.history = lines;
        editor
    }

    /// The lines entered into history since the last call, oldest first: what a
    /// history file should append.
    pub fn take_recorded(&mut self) -> Vec<String> {
        std::mem::take(&mut self.recorded)
    }

    /// The text being edited.
    pub fn line(&self) -> String {
        self.line.iter().collect()
    }

    /// The history, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Takes bytes read from the terminal; returns what they asked for, in order.
    /// The line's state afterwards reflects every byte (keys after an Enter in the same
    /// read are already in the new line).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::take(&mut self.after_cr);
            if self.escape != Escape::None {
                self.escape_byte(byte);
                continue;
            }
            if !self.utf8.is_empty() {
                if (0x80..=0xbf).contains(&byte) {
                    self.utf8_continue(byte);
                    continue;
                }
                // A broken character is dropped; this byte still counts.
                self.utf8.clear();
            }
            if byte >= 0x80 {
                if utf8_len(byte) > 1 {
                    self.utf8.push(byte);
                }
            } else if byte == b'\n' && after_cr {
                // The `\n` of a pasted `\r\n`: that Enter is already handled.
            } else {
                self.control_or_ascii(byte, &mut events);
            }
        }
        events
    }

    fn control_or_ascii(&mut self, byte: u8, events: &mut Vec<Event>) {
        match byte {
            0x20..=0x7e => self.insert(char::from(byte)),
            b'\r' | b'\n' => {
                self.after_cr = byte == b'\r';
                events.push(Event::Submit(self.submit()));
            }
            0x01 => self.cursor = 0,               // Ctrl-A
            0x02 => self.move_left(),              // Ctrl-B
            0x05 => self.cursor = self.line.len(), // Ctrl-E
            0x06 => self.move_right(),             // Ctrl-F
            0x03 => {
                // Ctrl-C
                if self.line.is_empty() {
                    events.push(Event::Interrupt);
                } else {
                    self.set_line(Vec::new());
                    self.history_index = self.history.len();
                }
            }
            0x04 => {
                // Ctrl-D
                if self.line.is_empty() {
                    events.push(Event::Eof);
                } else {
                    self.delete();
                }
            }
            0x08 | 0x7f => self.backspace(),
            0x0b => self.line.truncate(self.cursor), // Ctrl-K
            0x0c => events.push(Event::ClearScreen), // Ctrl-L
            0x0e => self.history_next(),             // Ctrl-N
            0x10 => self.history_prev(),             // Ctrl-P
            0x15 => {
                // Ctrl-U
                self.line.drain(..self.cursor);
                self.cursor = 0;
            }
            0x17 => self.delete_word_back(), // Ctrl-W
            0x1b => self.escape = Escape::Start,
            _ => {} // Tab and the other control keys do nothing.
        }
    }

    /// A continuation byte of the pending UTF-8 character.
    fn utf8_continue(&mut self, byte: u8) {
        self.utf8.push(byte);
        if self.utf8.len() < utf8_len(self.utf8[0]) {
            return;
        }
        let bytes = std::mem::take(&mut self.utf8);
        if let Some(c) = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.chars().next())
        {
            // C1 controls (U+0080–U+009F) are control characters too.
            if !c.is_control() {
                self.insert(c);
            }
        }
    }

    fn escape_byte(&mut self, byte: u8) {
        match std::mem::replace(&mut self.escape, Escape::None) {
            Escape::None => {}
            Escape::Start => match byte {
                b'[' => self.escape = Escape::Csi(Vec::new()),
                b'O' => self.escape = Escape::Ss3,
                b'b' | b'B' => self.word_left(),
                b'f' | b'F' => self.word_right(),
                0x7f => self.delete_word_back(),
                _ => {} // Alt + something else: ignored.
            },
            Escape::Ss3 => self.key(&[], byte),
            Escape::Csi(mut params) => match byte {
                0x20..=0x3f => {
                    // Overlong parameters are cut (no key we know has them) but the
                    // sequence is still consumed up to its final byte.
                    if params.len() < MAX_ESCAPE_LEN {
                        params.push(byte);
                    }
                    self.escape = Escape::Csi(params);
                }
                0x40..=0x7e => self.key(&params, byte),
                _ => {} // Malformed: dropped.
            },
        }
    }

    /// A complete `CSI params final` or `SS3 final` sequence.
    fn key(&mut self, params: &[u8], last: u8) {
        // `1;5C` is Ctrl-→, `1;3C` Alt-→: both move by word.
        let modified = params.contains(&b';');
        match (params, last) {
            (_, b'A') => self.history_prev(),
            (_, b'B') => self.history_next(),
            (_, b'C') if modified => self.word_right(),
            (_, b'D') if modified => self.word_left(),
            (_, b'C') => self.move_right(),
            (_, b'D') => self.move_left(),
            (_, b'H') | (b"1" | b"7", b'~') => self.cursor = 0,
            (_, b'F') | (b"4" | b"8", b'~') => self.cursor = self.line.len(),
            (b"3", b'~') => self.delete(),
            _ => {} // Function keys, bracketed-paste markers and the like.
        }
    }

    fn insert(&mut self, c: char) {
        self.line.insert(self.cursor, c);
        self.cursor += 1;
    }

    fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.line.remove(self.cursor);
        }
    }

    fn delete(&mut self) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
        }
    }

    fn move_left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    fn move_right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.line.len());
    }

    /// Start of the word before the cursor (skipping spaces first), as Ctrl-W and
    /// Alt-B see it.
    fn word_start(&self) -> usize {
        let mut i = self.cursor;
        while i > 0 && self.line[i - 1].is_whitespace() {
            i -= 1;
        }
        while i > 0 && !self.line[i - 1].is_whitespace() {
            i -= 1;
        }
        i
    }

    fn word_left(&mut self) {
        self.cursor = self.word_start();
    }

    fn word_right(&mut self) {
        let mut i = self.cursor;
        while i < self.line.len() && self.line[i].is_whitespace() {
            i += 1;
        }
        while i < self.line.len() && !self.line[i].is_whitespace() {
            i += 1;
        }
        self.cursor = i;
    }

    fn delete_word_back(&mut self) {
        let start = self.word_start();
        self.line.drain(start..self.cursor);
        self.cursor = start;
    }

    fn set_line(&mut self, line: Vec<char>) {
        self.cursor = line.len();
        self.line = line;
    }

    fn history_prev(&mut self) {
        if self.history_index == 0 {
            return;
        }
        if self.history_index == self.history.len() {
            self.draft = std::mem::take(&mut self.line);
        }
        self.history_index -= 1;
        self.set_line(self.history[self.history_index].chars().collect());
    }

    fn history_next(&mut self) {
        if self.history_index >= self.history.len() {
            return;
        }
        self.history_index += 1;
        let line = if self.history_index == self.history.len() {
            std::mem::take(&mut self.draft)
        } else {
            self.history[self.history_index].chars().collect()
        };
        self.set_line(line);
    }

    /// Clears the line and returns it, remembering it in history unless it is blank
    /// or repeats the previous entry.
    fn submit(&mut self) -> String {
        let line: String = std::mem::take(&mut self.line).into_iter().collect();
        self.cursor = 0;
        self.draft.clear();
        // A line with a password is never remembered (nor saved to the history file).
        if !line.trim().is_empty()
            && self.history.last() != Some(&line)
            && !crate::commands::holds_password(&line)
        {
            if self.history.len() == HISTORY_LIMIT {
                self.history.remove(0);
            }
            self.history.push(line.clone());
            self.recorded.push(line.clone());
        }
        self.history_index = self.history.len();
        line
    }

    /// The bytes that redraw the prompt and line on the current terminal row and put
    /// the cursor in place: `\r`, prompt, the visible part of the line, erase to end
    /// of row, then cursor-left. `prompt_width` is the prompt's width in columns (it
    /// may hold colour codes); `width` is the terminal's.
    ///
    /// A line wider than the row scrolls sideways to keep the cursor visible, and
    /// each cut edge shows a marker ([`HIDDEN_LEFT`], [`HIDDEN_RIGHT`]) in a column
    /// of its own, so hidden text is never mistaken for the whole line.
    pub fn render(&self, prompt: &str, prompt_width: usize, width: usize) -> String {
        // Keep the last column free: writing there makes some terminals wrap.
        let room = width.saturating_sub(prompt_width + 1).max(1);
        let widths: Vec<usize> = self.line.iter().map(|&c| char_width(c)).collect();
        let (start, end) = if widths.iter().sum::<usize>() <= room {
            (0, self.line.len())
        } else {
            self.visible_range(&widths, room)
        };
        let (left, right) = (start > 0, end < self.line.len());
        let mut out = String::with_capacity(prompt.len() + 4 * (end - start) + 16);
        out.push('\r');
        out.push_str(prompt);
        if left {
            out.push(HIDDEN_LEFT);
        }
        out.extend(&self.line[start..end]);
        if right {
            out.push(HIDDEN_RIGHT);
        }
        out.push_str("\x1b[K");
        let back = widths[self.cursor..end].iter().sum::<usize>() + usize::from(right);
        if back > 0 {
            out.push_str(&format!("\x1b[{back}D"));
        }
        out
    }

    /// The chars `start..end` shown of a line too wide for `room` columns: the cursor
    /// stays visible, and a column is kept for each edge's marker.
    fn visible_range(&self, widths: &[usize], room: usize) -> (usize, usize) {
        // The cursor's cell must show the char under it (nothing at the end), and a
        // right marker is needed at most when text follows that char.
        let cursor_cell = widths.get(self.cursor).copied().unwrap_or(0);
        let after = (self.cursor + 1).min(self.line.len());
        let right_reserve = usize::from(after < self.line.len());
        // Drop chars from the left until the text before the cursor, the left
        // marker, the cursor's char and the right reserve fit.
        let mut start = 0;
        let mut before: usize = widths[..self.cursor].iter().sum();
        while start < self.cursor
            && before + usize::from(start > 0) + cursor_cell + right_reserve > room
        {
            before -= widths[start];
            start += 1;
        }
        let limit = room.saturating_sub(usize::from(start > 0));
        let mut end = start;
        let mut used = 0;
        while end < self.line.len() && used + widths[end] <= limit {
            used += widths[end];
            end += 1;
        }
        // Text is hidden on the right: give back a column for its marker, never
        // hiding the char under the cursor.
        if end < self.line.len() {
            while end > after && used + 1 > limit {
                end -= 1;
                used -= widths[end];
            }
        }
        (start, end.max(after))
    }
}

/// Shown at the left edge of the edit row when text is scrolled out of view there.
pub const HIDDEN_LEFT: char = '<';

/// Shown at the right edge of the edit row when text is cut off there.
pub const HIDDEN_RIGHT: char = '>';

/// The length of a UTF-8 sequence from its first byte (0 or 1 for bytes that cannot
/// start a multi-byte character).
fn utf8_len(first: u8) -> usize {
    match first {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 0,
    }
}

/// Columns a character takes in a terminal: 0 for combining and zero-width marks,
/// 2 for wide (East Asian Wide/Fullwidth, most emoji), else 1.
pub fn char_width(c: char) -> usize {
    let c = u32::from(c);
    const ZERO: &[(u32, u32)] = &[
        (0x0300, 0x036f),
        (0x0483, 0x0489),
        (0x0591, 0x05bd),
        (0x0610, 0x061a),
        (0x064b, 0x065f),
        (0x1160, 0x11ff), // Hangul medial vowels and final consonants (conjoining)
        (0x1ab0, 0x1aff),
        (0x1dc0, 0x1dff),
        (0x200b, 0x200f),
        (0x202a, 0x202e),
        (0x2060, 0x2064),
        (0x20d0, 0x20ff),
        (0xd7b0, 0xd7ff),
        (0xfe00, 0xfe0f),
        (0xfe20, 0xfe2f),
        (0xfeff, 0xfeff),
        (0xe0100, 0xe01ef),
    ];
    const WIDE: &[(u32, u32)] = &[
        (0x1100, 0x115f),
        (0x231a, 0x231b),
        (0x2329, 0x232a),
        (0x23e9, 0x23ec),
        (0x25fd, 0x25fe),
        (0x2614, 0x2615),
        (0x26a1, 0x26a1),
        (0x26bd, 0x26be),
        (0x26c4, 0x26c5),
        (0x2705, 0x2705),
        (0x2728, 0x2728),
        (0x274c, 0x274c),
        (0x2753, 0x2755),
        (0x2795, 0x2797),
        (0x2b1b, 0x2b1c),
        (0x2b50, 0x2b50),
        (0x2e80, 0x303e),
        (0x3041, 0x33ff),
        (0x3400, 0x4dbf),
        (0x4e00, 0x9fff),
        (0xa000, 0xa4cf),
        (0xa960, 0xa97f),
        (0xac00, 0xd7a3),
        (0xf900, 0xfaff),
        (0xfe10, 0xfe19),
        (0xfe30, 0xfe6f),
        (0xff00, 0xff60),
        (0xffe0, 0xffe6),
        (0x1f004, 0x1f004),
        (0x1f18e, 0x1f18e),
        (0x1f191, 0x1f19a),
        (0x1f200, 0x1f2ff),
        (0x1f300, 0x1f64f),
        (0x1f680, 0x1f6ff),
        (0x1f7e0, 0x1f7eb),
        (0x1f900, 0x1f9ff),
        (0x1fa70, 0x1faff),
        (0x20000, 0x3fffd),
    ];
    let within = |table: &[(u32, u32)]| {
        table
            .binary_search_by(|&(lo, hi)| {
                if hi < c {
                    std::cmp::Ordering::Less
                } else if lo > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    };
    if within(ZERO) {
        0
    } else if within(WIDE) {
        2
    } else {
        1
    }
}

/// Columns a string takes (no control characters expected).
pub fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &[u8]) -> (Editor, Vec<Event>) {
        let mut editor = Editor::new();
        let events = editor.feed(keys);
        (editor, events)
    }

    #[test]
    fn typing_and_enter() {
        let (editor, events) = typed(b"hello\r");
        assert_eq!(events, [Event::Submit("hello".into())]);
        assert_eq!(editor.line(), "");
        assert_eq!(editor.history(), ["hello"]);
    }

    #[test]
    fn pasted_lines_with_crlf_submit_once_each() {
        let (editor, events) = typed(b"a\r\nb\nc");
        assert_eq!(
            events,
            [Event::Submit("a".into()), Event::Submit("b".into())]
        );
        assert_eq!(editor.line(), "c");
    }

    #[test]
    fn utf8_split_across_reads() {
        let mut editor = Editor::new();
        let bytes = "안녕".as_bytes();
        for chunk in bytes.chunks(1) {
            assert!(editor.feed(chunk).is_empty());
        }
        assert_eq!(editor.line(), "안녕");
        // A broken sequence is dropped and the next byte still counts.
        editor.feed(b"\xea\xb0x");
        assert_eq!(editor.line(), "안녕x");
        // C1 controls never enter the line.
        editor.feed("\u{9b}".as_bytes());
        assert_eq!(editor.line(), "안녕x");
    }

    #[test]
    fn cursor_movement_and_editing() {
        // abc, ←, ←, X → aXbc; End, Backspace → aXb; Home, Delete → Xb
        let (editor, _) = typed(b"abc\x1b[D\x1b[DX\x1b[F\x7f\x01\x1b[3~");
        assert_eq!(editor.line(), "Xb");
        // Ctrl-K kills to the end, Ctrl-U to the start.
        let (editor, _) = typed(b"hello world\x01\x1b[C\x1b[C\x0b");
        assert_eq!(editor.line(), "he");
        let (editor, _) = typed(b"hello world\x1b[D\x1b[D\x15");
        assert_eq!(editor.line(), "ld");
    }

    #[test]
    fn word_commands() {
        let (editor, _) = typed(b"one two  three\x17");
        assert_eq!(editor.line(), "one two  ");
        let (editor, _) = typed(b"one two three\x1bb\x1bbX");
        assert_eq!(editor.line(), "one Xtwo three");
        let (editor, _) = typed(b"one two\x1b[1;5DY\x1b[1;5CZ");
        assert_eq!(editor.line(), "one YtwoZ");
        let (editor, _) = typed(b"one two\x01\x1bfZ");
        assert_eq!(editor.line(), "oneZ two");
    }

    #[test]
    fn history_browsing_keeps_the_draft() {
        let mut editor = Editor::new();
        editor.feed(b"first\rsecond\rsecond\r  \rdraft");
        assert_eq!(editor.history(), ["first", "second"]);
        editor.feed(b"\x1b[A");
        assert_eq!(editor.line(), "second");
        editor.feed(b"\x1b[A\x1b[A");
        assert_eq!(editor.line(), "first");
        editor.feed(b"\x1bOB");
        assert_eq!(editor.line(), "second");
        editor.feed(b"\x0e");
        assert_eq!(editor.line(), "draft");
        editor.feed(b"\x0e");
        assert_eq!(editor.line(), "draft");
    }

    #[test]
    fn ctrl_d_and_ctrl_c() {
        let (_, events) = typed(b"\x04");
        assert_eq!(events, [Event::Eof]);
        let (editor, events) = typed(b"ab\x01\x04");
        assert!(events.is_empty());
        assert_eq!(editor.line(), "b");
        let (editor, events) = typed(b"ab\x03");
        assert!(events.is_empty());
        assert_eq!(editor.line(), "");
        let (_, events) = typed(b"\x03");
        assert_eq!(events, [Event::Interrupt]);
        let (_, events) = typed(b"\x0c");
        assert_eq!(events, [Event::ClearScreen]);
    }

    #[test]
    fn control_keys_and_unknown_sequences_insert_nothing() {
        let (editor, _) =
            typed(b"a\t\x00\x1b[15~\x1b[200~b\x1b[201~\x1bxc\x1b[999999999999999999999Zd");
        assert_eq!(editor.line(), "abcd");
    }

    #[test]
    fn render_places_the_cursor() {
        let (editor, _) = typed(b"abc\x1b[D");
        assert_eq!(editor.render("> ", 2, 80), "\r> abc\x1b[K\x1b[1D");
        let (editor, _) = typed("한글".as_bytes());
        assert_eq!(editor.render("> ", 2, 80), "\r> 한글\x1b[K");
        let (editor, _) = typed("한글\x1b[D\x1b[D".as_bytes());
        assert_eq!(editor.render("> ", 2, 80), "\r> 한글\x1b[K\x1b[4D");
    }

    #[test]
    fn render_scrolls_long_lines_and_marks_hidden_text() {
        // Width 10, prompt 2: 7 columns of text.
        let (editor, _) = typed(b"0123456789");
        assert_eq!(editor.render("> ", 2, 10), "\r> <456789\x1b[K");
        let (editor, _) = typed(b"0123456789\x01");
        assert_eq!(editor.render("> ", 2, 10), "\r> 012345>\x1b[K\x1b[7D");
        // In the middle: both edges marked, the cursor still on its char.
        let (editor, _) = typed(b"0123456789\x1b[D\x1b[D\x1b[D");
        assert_eq!(editor.render("> ", 2, 10), "\r> <34567>\x1b[K\x1b[2D");
        // Exactly fitting: no markers.
        let (editor, _) = typed(b"0123456");
        assert_eq!(editor.render("> ", 2, 10), "\r> 0123456\x1b[K");
        // Wide characters never split across the edge.
        let (editor, _) = typed("가나다라마".as_bytes());
        assert_eq!(editor.render("> ", 2, 10), "\r> <다라마\x1b[K");
    }

    #[test]
    fn loaded_history_and_recorded_lines() {
        let mut editor = Editor::with_history(vec!["old".into()]);
        editor.feed(b"\x1b[A");
        assert_eq!(editor.line(), "old");
        editor.feed(b"\x03new\rnew\r \r");
        assert_eq!(editor.take_recorded(), ["new"]);
        assert!(editor.take_recorded().is_empty());
        assert_eq!(editor.history(), ["old", "new"]);
    }

    #[test]
    fn widths() {
        assert_eq!(str_width("abc"), 3);
        assert_eq!(str_width("한글"), 4);
        assert_eq!(str_width("e\u{301}"), 1);
        assert_eq!(str_width("😀"), 2);
        assert_eq!(str_width("中"), 2);
    }
}
