//! Just enough of Python's pickle format to read CIFAR's python batches: dicts, lists,
//! strings, integers, and numpy arrays (a `_reconstruct` call plus its state). Pickles
//! written by Python 2 (`cifar-10-python.tar.gz`) and by Python 3 (protocols 2 to 5) are
//! both read. Nothing is executed: globals are only recorded by name.

use super::Malformed;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Py {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Py>),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
    /// `module.name`, not resolved.
    Global(String, String),
    /// `callable(*args)`, not called.
    Call(Box<Py>, Box<Py>),
    /// An object with the state `BUILD` gave it.
    Built(Box<Py>, Box<Py>),
}

impl Py {
    /// A dict entry by key, whether the key was pickled as bytes (Python 2) or text.
    pub fn get(&self, key: &str) -> Option<&Py> {
        let Py::Dict(items) = self else { return None };
        items
            .iter()
            .find(|(k, _)| k.text().as_deref() == Some(key))
            .map(|(_, v)| v)
    }

    /// Text of a str, or of bytes read as Latin-1 (what Python 2's `str` held).
    pub fn text(&self) -> Option<String> {
        match self {
            Py::Str(s) => Some(s.clone()),
            Py::Bytes(b) => Some(b.iter().map(|&c| c as char).collect()),
            _ => None,
        }
    }

    /// Raw bytes: bytes, a Latin-1 str, or Python 3's `_codecs.encode(str, "latin1")`.
    pub fn raw_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Py::Bytes(b) => Some(b.clone()),
            Py::Str(s) => s.chars().map(|c| u8::try_from(c as u32).ok()).collect(),
            Py::Call(f, args) if matches!(&**f, Py::Global(m, n) if m == "_codecs" && n == "encode") => {
                match &**args {
                    Py::Tuple(a) if !a.is_empty() => a[0].raw_bytes(),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Py::Int(i) => Some(*i),
            Py::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// A uint8 numpy array: its shape and bytes (C order).
    pub fn u8_array(&self) -> Result<(Vec<usize>, Vec<u8>), Malformed> {
        let Py::Built(_, state) = self else {
            return Err("not a numpy array".into());
        };
        let Py::Tuple(state) = &**state else {
            return Err("numpy array state is not a tuple".into());
        };
        let [_, shape, dtype, fortran, data] = state.as_slice() else {
            return Err(Malformed(format!(
                "numpy array state has {} fields, expected 5",
                state.len()
            )));
        };
        let Py::Tuple(dims) = shape else {
            return Err("numpy shape is not a tuple".into());
        };
        let shape: Vec<usize> = dims
            .iter()
            .map(|d| d.int().map(|i| i as usize))
            .collect::<Option<_>>()
            .ok_or("bad numpy shape")?;
        let kind = match dtype {
            Py::Built(call, _) => match &**call {
                Py::Call(_, args) => match &**args {
                    Py::Tuple(a) => a.first().and_then(Py::text),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        if kind.as_deref() != Some("u1") {
            return Err(Malformed(format!(
                "numpy dtype is {}, expected uint8 (u1)",
                kind.unwrap_or_else(|| "unknown".into())
            )));
        }
        if *fortran == Py::Bool(true) {
            return Err("numpy array is in Fortran order".into());
        }
        let bytes = data
            .raw_bytes()
            .ok_or("numpy array data is not raw bytes")?;
        if bytes.len() != shape.iter().product::<usize>() {
            return Err(Malformed(format!(
                "numpy array holds {} bytes for shape {shape:?}",
                bytes.len()
            )));
        }
        Ok((shape, bytes))
    }
}

/// Parses one pickle.
pub fn parse(bytes: &[u8]) -> Result<Py, Malformed> {
    let mut m = Machine {
        bytes,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    m.run()
}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Py>,
    marks: Vec<usize>,
    memo: HashMap<u32, Py>,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Malformed> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("pickle ends inside an item at byte {}", self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn uint(&mut self, n: usize) -> Result<u64, Malformed> {
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0u64, |acc, &b| acc << 8 | b as u64))
    }

    fn line(&mut self) -> Result<String, Malformed> {
        let rest = &self.bytes[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("unterminated line in pickle")?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(text)
    }

    fn pop(&mut self) -> Result<Py, Malformed> {
        self.stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".into())
    }

    fn pop_mark(&mut self) -> Result<Vec<Py>, Malformed> {
        let mark = self.marks.pop().ok_or("pickle mark missing")?;
        Ok(self.stack.split_off(mark))
    }

    fn top(&mut self) -> Result<&mut Py, Malformed> {
        self.stack
            .last_mut()
            .ok_or_else(|| "pickle stack underflow".into())
    }

    fn run(&mut self) -> Result<Py, Malformed> {
        loop {
            let at = self.pos;
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    self.take(1)?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.stack.push(Py::Dict(Vec::new())),
                b']' => self.stack.push(Py::List(Vec::new())),
                b')' => self.stack.push(Py::Tuple(Vec::new())),
                b'N' => self.stack.push(Py::None),
                0x88 => self.stack.push(Py::Bool(true)),
                0x89 => self.stack.push(Py::Bool(false)),
                b'K' => {
                    let v = self.uint(1)? as i64;
                    self.stack.push(Py::Int(v))
                }
                b'M' => {
                    let v = self.uint(2)? as i64;
                    self.stack.push(Py::Int(v))
                }
                b'J' => {
                    let v = self.uint(4)? as u32 as i32 as i64;
                    self.stack.push(Py::Int(v))
                }
                0x8a => {
                    let n = self.uint(1)? as usize;
                    let raw = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, &b) in raw.iter().enumerate().take(8) {
                        v |= (b as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && raw[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Py::Int(v))
                }
                b'G' => {
                    let raw: [u8; 8] = self.take(8)?.try_into().expect("8 bytes");
                    self.stack.push(Py::Float(f64::from_be_bytes(raw)))
                }
                b'U' | b'C' => {
                    let n = self.uint(1)? as usize;
                    let v = self.take(n)?.to_vec();
                    self.stack.push(Py::Bytes(v))
                }
                b'T' | b'B' => {
                    let n = self.uint(4)? as usize;
                    let v = self.take(n)?.to_vec();
                    self.stack.push(Py::Bytes(v))
                }
                0x8e => {
                    let n = self.uint(8)? as usize;
                    let v = self.take(n)?.to_vec();
                    self.stack.push(Py::Bytes(v))
                }
                0x8c | b'X' | 0x8d => {
                    let n = match op {
                        0x8c => self.uint(1)?,
                        b'X' => self.uint(4)?,
                        _ => self.uint(8)?,
                    } as usize;
                    let v = String::from_utf8(self.take(n)?.to_vec())
                        .map_err(|_| "invalid UTF-8 in pickle")?;
                    self.stack.push(Py::Str(v))
                }
                b'q' => {
                    let k = self.uint(1)? as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(k, v);
                }
                b'r' => {
                    let k = self.uint(4)? as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(k, v);
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(k, v);
                }
                b'h' | b'j' => {
                    let k = if op == b'h' {
                        self.uint(1)?
                    } else {
                        self.uint(4)?
                    } as u32;
                    let v = self
                        .memo
                        .get(&k)
                        .cloned()
                        .ok_or_else(|| format!("pickle memo {k} unset"))?;
                    self.stack.push(v);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Py::Tuple(items))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err("pickle stack underflow".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Py::Tuple(items))
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Py::Global(module, name))
                }
                0x93 => {
                    let name = self.pop()?.text().unwrap_or_default();
                    let module = self.pop()?.text().unwrap_or_default();
                    self.stack.push(Py::Global(module, name))
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    self.stack.push(Py::Call(Box::new(f), Box::new(args)))
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.pop()?;
                    self.stack.push(Py::Built(Box::new(obj), Box::new(state)))
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        Py::List(items) => items.push(v),
                        _ => return Err(Malformed(format!("APPEND to a non-list at byte {at}"))),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Py::List(list) => list.extend(items),
                        _ => return Err(Malformed(format!("APPENDS to a non-list at byte {at}"))),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top()? {
                        Py::Dict(d) => d.push((k, v)),
                        _ => return Err(Malformed(format!("SETITEM on a non-dict at byte {at}"))),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let Py::Dict(d) = self.top()? else {
                        return Err(Malformed(format!("SETITEMS on a non-dict at byte {at}")));
                    };
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
                other => {
                    return Err(Malformed(format!(
                        "unsupported pickle opcode 0x{other:02x} at byte {at}"
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
pub mod testutil {
    //! Pickles as Python 2's cPickle (protocol 2) writes CIFAR's batches.

    fn s(out: &mut Vec<u8>, text: &[u8]) {
        if text.len() < 256 {
            out.push(b'U');
            out.push(text.len() as u8);
        } else {
            out.push(b'T');
            out.extend((text.len() as u32).to_le_bytes());
        }
        out.extend(text);
    }

    fn int(out: &mut Vec<u8>, v: u32) {
        if v < 256 {
            out.extend([b'K', v as u8]);
        } else {
            out.push(b'J');
            out.extend(v.to_le_bytes());
        }
    }

    fn u8_array(out: &mut Vec<u8>, rows: usize, cols: usize, data: &[u8]) {
        out.extend(b"cnumpy.core.multiarray\n_reconstruct\n");
        out.extend(b"cnumpy\nndarray\n");
        int(out, 0);
        out.push(0x85);
        s(out, b"b");
        out.extend([0x87, b'R']);
        out.extend([b'(', b'K', 1]);
        int(out, rows as u32);
        int(out, cols as u32);
        out.push(0x86);
        out.extend(b"cnumpy\ndtype\n");
        s(out, b"u1");
        int(out, 0);
        int(out, 1);
        out.extend([0x87, b'R', b'(', b'K', 3]);
        s(out, b"|");
        out.extend([b'N', b'N', b'N', b'J']);
        out.extend((-1i32).to_le_bytes());
        out.push(b'J');
        out.extend((-1i32).to_le_bytes());
        out.extend([b'K', 0, b't', b'b', 0x89]);
        s(out, data);
        out.extend([b't', b'b']);
    }

    /// A CIFAR batch dict: `data` (rows × 3072 uint8), `labels_key` (list of ints).
    pub fn batch(data: &[u8], labels: &[u32], labels_key: &str) -> Vec<u8> {
        let mut out = vec![0x80, 2, b'}', b'q', 1, b'('];
        s(&mut out, b"data");
        u8_array(&mut out, labels.len(), 3072, data);
        s(&mut out, labels_key.as_bytes());
        out.extend([b']', b'(']);
        for &l in labels {
            int(&mut out, l);
        }
        out.extend([b'e', b'u', b'.']);
        out
    }

    /// A meta dict with a list of names.
    pub fn meta(key: &str, names: &[&str]) -> Vec<u8> {
        let mut out = vec![0x80, 2, b'}', b'('];
        s(&mut out, key.as_bytes());
        out.extend([b']', b'(']);
        for n in names {
            s(&mut out, n.as_bytes());
        }
        out.extend([b'e', b'u', b'.']);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python2_style_batch() {
        let data: Vec<u8> = (0..2 * 3072).map(|i| (i % 251) as u8).collect();
        let pickle = testutil::batch(&data, &[3, 300], "labels");
        let py = parse(&pickle).unwrap();
        let (shape, bytes) = py.get("data").unwrap().u8_array().unwrap();
        assert_eq!(shape, [2, 3072]);
        assert_eq!(bytes, data);
        let Py::List(labels) = py.get("labels").unwrap() else {
            panic!()
        };
        assert_eq!(labels, &[Py::Int(3), Py::Int(300)]);
    }

    /// `pickle.dumps({"data": np.arange(6, dtype=np.uint8).reshape(2, 3), "labels": [1, -2]},
    /// protocol=2)` from Python 3 with numpy 2: bytes go through `_codecs.encode`.
    #[test]
    fn python3_protocol2_numpy_array() {
        let pickle = include_bytes!("testdata/py3_protocol2.pickle");
        let py = parse(pickle).unwrap();
        let (shape, bytes) = py.get("data").unwrap().u8_array().unwrap();
        assert_eq!(shape, [2, 3]);
        assert_eq!(bytes, [0, 1, 2, 3, 4, 5]);
        let Py::List(labels) = py.get("labels").unwrap() else {
            panic!()
        };
        assert_eq!(labels, &[Py::Int(1), Py::Int(-2)]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(
            parse(b"\x80\x02}q\x01(U")
                .unwrap_err()
                .0
                .contains("pickle ends inside an item")
        );
        assert!(
            parse(b"\xff")
                .unwrap_err()
                .0
                .contains("unsupported pickle opcode 0xff")
        );
    }
}
