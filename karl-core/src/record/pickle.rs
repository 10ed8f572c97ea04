//! A data-only reader for Python pickles (protocols 2–5 binary opcodes), enough for `torch.save`.
//!
//! Nothing is ever executed or imported: `GLOBAL` only records a module/name pair, and
//! `REDUCE`/`NEWOBJ`/`BUILD` only record "this callable applied to these arguments, with this
//! state" as an [`Object`]. Interpreting those records (e.g. `torch._utils._rebuild_tensor_v2`)
//! is left to the caller ([`super::pth`]); anything it does not know stays an opaque value.
//!
//! Why not a crate: `serde-pickle` rejects persistent ids (`BINPERSID`) and arbitrary globals,
//! which every torch checkpoint uses; `pytorch-reader` (from burn) reads checkpoints but pulls a
//! second `zip` major version, `tar`, `byteorder` and ~2,700 lines of pickle code, and the
//! candle parser is not a standalone crate. The subset needed here is small, and owning it lets
//! every malformed input become an [`Error::Format`] that says what was wrong, where.
use crate::error::{Error, Result};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

/// A value built by the pickle machine. Containers are shared (`Rc`), as in Python, so that a
/// memoised dict filled after being memoised is seen filled wherever it is referenced.
#[derive(Clone, Default)]
pub enum Value {
    /// `None`.
    #[default]
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits in i64.
    Int(i64),
    /// A larger integer, as little-endian two's-complement bytes (kept opaque).
    BigInt(Rc<[u8]>),
    /// A float.
    Float(f64),
    /// A text string.
    Str(Rc<str>),
    /// A byte string.
    Bytes(Rc<[u8]>),
    /// A tuple.
    Tuple(Rc<[Value]>),
    /// A list (sets and frozensets are read as lists too).
    List(Rc<RefCell<Vec<Value>>>),
    /// A dict, as its (key, value) pairs in insertion order.
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// A reference to a global (`module.name`), never resolved.
    Global(Rc<Global>),
    /// A persistent id (`BINPERSID`): the pickled id, to be resolved by the caller.
    PersistentId(Rc<Value>),
    /// The recorded result of calling something (`REDUCE`, `NEWOBJ`).
    Object(Rc<RefCell<Object>>),
}

/// A global reference as written by `GLOBAL` / `STACK_GLOBAL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    /// The module, e.g. `torch._utils`.
    pub module: String,
    /// The name inside the module, e.g. `_rebuild_tensor_v2`.
    pub name: String,
}

/// A call recorded instead of executed: `callable(*args)`, then `BUILD` state and any items
/// added with `SETITEM(S)` / `APPEND(S)` (dict and list subclasses such as `OrderedDict`).
#[derive(Clone)]
pub struct Object {
    /// What was called (usually a [`Value::Global`]).
    pub callable: Value,
    /// The arguments (a tuple).
    pub args: Value,
    /// The state given by `BUILD`, if any.
    pub state: Option<Value>,
    /// (key, value) pairs set on the object.
    pub items: Vec<(Value, Value)>,
    /// Values appended to the object.
    pub appended: Vec<Value>,
}

impl Value {
    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) | Value::BigInt(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Tuple(t) => format!("tuple of {}", t.len()),
            Value::List(_) => "list".into(),
            Value::Dict(_) => "dict".into(),
            Value::Global(g) => format!("global {}.{}", g.module, g.name),
            Value::PersistentId(_) => "persistent id".into(),
            Value::Object(o) => match &o.borrow().callable {
                Value::Global(g) => format!("{}.{} object", g.module, g.name),
                _ => "object".into(),
            },
        }
    }
    /// The string, if this is a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The integer, if this is an `int` that fits in i64 (or a bool, as Python does).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
    /// The items, if this is a tuple.
    pub fn as_tuple(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(t) => Some(t),
            _ => None,
        }
    }
    /// The global, if this is one.
    pub fn as_global(&self) -> Option<&Global> {
        match self {
            Value::Global(g) => Some(g),
            _ => None,
        }
    }
}

impl Drop for Value {
    /// Iterative, so that a deeply nested pickle (a few bytes per level) cannot overflow the
    /// stack when dropped: children of containers owned only here are moved to a work list
    /// before their parent goes. (A value never holds a cycle: [`load`] refuses them and
    /// empties the cyclic garbage a pickle can leave behind.)
    fn drop(&mut self) {
        let mut pending = Vec::new();
        take_children(self, &mut pending);
        while let Some(mut v) = pending.pop() {
            take_children(&mut v, &mut pending);
        }
    }
}

/// Moves the children of `v` into `out` when `v` is the only owner of its container.
fn take_children(v: &mut Value, out: &mut Vec<Value>) {
    match v {
        Value::Tuple(t) => {
            if let Some(items) = Rc::get_mut(t) {
                out.extend(items.iter_mut().map(std::mem::take));
            }
        }
        Value::List(l) => {
            if let Some(cell) = Rc::get_mut(l) {
                out.append(cell.get_mut());
            }
        }
        Value::Dict(d) => {
            if let Some(cell) = Rc::get_mut(d) {
                cell.get_mut().drain(..).for_each(|(k, v)| out.extend([k, v]));
            }
        }
        Value::PersistentId(p) => {
            if let Some(id) = Rc::get_mut(p) {
                out.push(std::mem::take(id));
            }
        }
        Value::Object(o) => {
            if let Some(cell) = Rc::get_mut(o) {
                let o = cell.get_mut();
                out.push(std::mem::take(&mut o.callable));
                out.push(std::mem::take(&mut o.args));
                out.extend(o.state.take());
                o.items.drain(..).for_each(|(k, v)| out.extend([k, v]));
                out.append(&mut o.appended);
            }
        }
        _ => {}
    }
}

impl fmt::Debug for Value {
    /// Shallow on purpose: a pickle can build cyclic containers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => write!(f, "None"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(l) => write!(f, "list of {}", l.borrow().len()),
            Value::Dict(d) => write!(f, "dict of {}", d.borrow().len()),
            other => write!(f, "{}", other.kind()),
        }
    }
}

/// Runs the pickle machine over `data` and returns the value left by `STOP`.
///
/// A pickle whose value contains a cycle (a container that holds itself, through the memo) is
/// an [`Error::Format`]: no checkpoint needs one, and `Rc` cycles would never be freed. The
/// mutable containers the value does not hold (all of them on an error) are emptied before
/// returning, so that the cycles a hostile pickle builds and discards do not leak either.
pub fn load(data: &[u8]) -> Result<Value> {
    load_and_sweep(data).0
}

/// [`load`], also returning every mutable container the machine made (emptied unless the value
/// holds it), for the tests.
fn load_and_sweep(data: &[u8]) -> (Result<Value>, Vec<Value>) {
    let mut m = Machine { data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), made: Vec::new() };
    let result = m.run();
    let made = std::mem::take(&mut m.made);
    drop(m);
    let (result, keep) = match result.and_then(|v| reachable_acyclic(&v).map(|keep| (v, keep))) {
        Ok((v, keep)) => (Ok(v), keep),
        Err(e) => (Err(e), HashSet::new()),
    };
    for c in made.iter().filter(|c| node_id(c).is_some_and(|id| !keep.contains(&id))) {
        empty(c);
    }
    (result, made)
}

/// The identity of a shared container (its allocation), `None` for scalars.
fn node_id(v: &Value) -> Option<usize> {
    Some(match v {
        Value::Tuple(t) => Rc::as_ptr(t) as *const () as usize,
        Value::List(l) => Rc::as_ptr(l) as *const () as usize,
        Value::Dict(d) => Rc::as_ptr(d) as *const () as usize,
        Value::Object(o) => Rc::as_ptr(o) as *const () as usize,
        Value::PersistentId(p) => Rc::as_ptr(p) as *const () as usize,
        _ => return None,
    })
}

/// The values `v` holds directly.
fn children(v: &Value) -> Vec<Value> {
    match v {
        Value::Tuple(t) => t.to_vec(),
        Value::List(l) => l.borrow().clone(),
        Value::Dict(d) => d.borrow().iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect(),
        Value::Object(o) => {
            let o = o.borrow();
            let mut out = vec![o.callable.clone(), o.args.clone()];
            out.extend(o.state.clone());
            out.extend(o.items.iter().flat_map(|(k, v)| [k.clone(), v.clone()]));
            out.extend(o.appended.iter().cloned());
            out
        }
        Value::PersistentId(p) => vec![(**p).clone()],
        _ => Vec::new(),
    }
}

/// The containers reachable from `root`, or an error if one of them is part of a cycle
/// (iterative depth-first search, so deep nesting cannot overflow the stack).
fn reachable_acyclic(root: &Value) -> Result<HashSet<usize>> {
    let Some(id) = node_id(root) else { return Ok(HashSet::new()) };
    let (mut open, mut done) = (HashSet::from([id]), HashSet::new());
    let mut path = vec![(id, children(root), 0usize)];
    while let Some((id, kids, next)) = path.last_mut() {
        let Some(child) = kids.get(*next).cloned() else {
            let id = *id;
            open.remove(&id);
            done.insert(id);
            path.pop();
            continue;
        };
        *next += 1;
        let Some(cid) = node_id(&child) else { continue };
        if open.contains(&cid) {
            return Err(err(format!(
                "a {} contains itself (a cyclic structure, which no checkpoint has)",
                child.kind()
            )));
        }
        if !done.contains(&cid) {
            open.insert(cid);
            path.push((cid, children(&child), 0));
        }
    }
    Ok(done)
}

/// Empties a mutable container, breaking any cycle through it.
fn empty(v: &Value) {
    match v {
        Value::List(l) => drop(std::mem::take(&mut *l.borrow_mut())),
        Value::Dict(d) => drop(std::mem::take(&mut *d.borrow_mut())),
        Value::Object(o) => {
            let mut o = o.borrow_mut();
            let old = (
                std::mem::take(&mut o.callable),
                std::mem::take(&mut o.args),
                o.state.take(),
                std::mem::take(&mut o.items),
                std::mem::take(&mut o.appended),
            );
            drop(o);
            drop(old);
        }
        _ => {}
    }
}

/// The opcodes this reader runs, named as Python's `pickletools` names them (protocols 0 to 5;
/// the text forms that torch never writes, such as INT and FLOAT, are refused).
mod opcode {
    /// `pub const NAME: u8 = byte;` for each `NAME = byte`.
    macro_rules! opcodes {
        ($($name:ident = $byte:expr),* $(,)?) => { $(pub const $name: u8 = $byte;)* };
    }
    opcodes! {
        // framing and the stack
        PROTO = 0x80, FRAME = 0x95, STOP = b'.', MARK = b'(', POP = b'0', POP_MARK = b'1',
        DUP = b'2',
        // constants and numbers
        NONE = b'N', NEWTRUE = 0x88, NEWFALSE = 0x89, BININT = b'J', BININT1 = b'K',
        BININT2 = b'M', LONG1 = 0x8a, LONG4 = 0x8b, BINFLOAT = b'G',
        // text and bytes
        BINUNICODE = b'X', SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES = b'B',
        SHORT_BINBYTES = b'C', BINBYTES8 = 0x8e, BINSTRING = b'T', SHORT_BINSTRING = b'U',
        // tuples, lists, sets and dicts
        EMPTY_TUPLE = b')', TUPLE = b't', TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87,
        EMPTY_LIST = b']', EMPTY_SET = 0x8f, LIST = b'l', FROZENSET = 0x91, APPEND = b'a',
        APPENDS = b'e', ADDITEMS = 0x90, EMPTY_DICT = b'}', DICT = b'd', SETITEM = b's',
        SETITEMS = b'u',
        // classes, calls and persistent ids
        GLOBAL = b'c', STACK_GLOBAL = 0x93, REDUCE = b'R', NEWOBJ = 0x81, NEWOBJ_EX = 0x92,
        BUILD = b'b', BINPERSID = b'Q', PERSID = b'P',
        // the memo
        BINPUT = b'q', LONG_BINPUT = b'r', MEMOIZE = 0x94, BINGET = b'h', LONG_BINGET = b'j',
        PUT = b'p', GET = b'g',
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack heights at each open `MARK`; the stack below the innermost one is out of reach.
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    /// Every list, dict and object made, so that cycles among them can be broken at the end.
    made: Vec<Value>,
}

fn err(msg: impl fmt::Display) -> Error {
    Error::Format(format!("pickle: {msg}"))
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
                err(format!("truncated: {n} bytes needed at offset {} of {}", self.pos, self.data.len()))
            })?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }
    fn take_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take_array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take_array()?))
    }
    fn len_u64(&mut self) -> Result<usize> {
        let n = u64::from_le_bytes(self.take_array()?);
        usize::try_from(n).map_err(|_| err(format!("length {n} too large")))
    }
    fn line(&mut self) -> Result<&str> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| err("unterminated text line"))?;
        let line = std::str::from_utf8(&rest[..n]).map_err(|_| err("text line is not UTF-8"))?;
        self.pos += n + 1;
        Ok(line)
    }
    fn utf8(&mut self, n: usize) -> Result<Value> {
        let at = self.pos;
        let s = std::str::from_utf8(self.take(n)?).map_err(|_| err(format!("invalid UTF-8 string at offset {at}")))?;
        Ok(Value::Str(s.into()))
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }
    fn pop(&mut self) -> Result<Value> {
        if self.stack.len() <= self.floor() {
            return Err(err(format!("stack underflow at offset {}", self.pos)));
        }
        self.stack.pop().ok_or_else(|| err("stack underflow"))
    }
    fn top(&mut self) -> Result<&mut Value> {
        if self.stack.len() <= self.floor() {
            return Err(err(format!("stack underflow at offset {}", self.pos)));
        }
        self.stack.last_mut().ok_or_else(|| err("stack underflow"))
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self.marks.pop().ok_or_else(|| err(format!("no MARK open at offset {}", self.pos)))?;
        if m > self.stack.len() {
            return Err(err(format!("MARK below the stack at offset {}", self.pos)));
        }
        Ok(self.stack.split_off(m))
    }
    fn memo_get(&self, key: u64) -> Result<Value> {
        self.memo.get(&key).cloned().ok_or_else(|| err(format!("memo {key} read before it was written")))
    }
    fn memo_put(&mut self, key: u64) -> Result<()> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn set_items(&mut self, pairs: Vec<Value>) -> Result<()> {
        if !pairs.len().is_multiple_of(2) {
            return Err(err(format!("odd number of values ({}) for dict items", pairs.len())));
        }
        let mut it = pairs.into_iter();
        let mut kv = Vec::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            kv.push((k, v));
        }
        match self.top()? {
            Value::Dict(d) => d.borrow_mut().extend(kv),
            Value::Object(o) => o.borrow_mut().items.extend(kv),
            other => return Err(err(format!("cannot set items on a {}", other.kind()))),
        }
        Ok(())
    }
    fn append(&mut self, values: Vec<Value>) -> Result<()> {
        match self.top()? {
            Value::List(l) => l.borrow_mut().extend(values),
            Value::Object(o) => o.borrow_mut().appended.extend(values),
            other => return Err(err(format!("cannot append to a {}", other.kind()))),
        }
        Ok(())
    }
    fn call(&mut self, callable: Value, args: Value) -> Result<()> {
        if !matches!(args, Value::Tuple(_)) {
            return Err(err(format!("call arguments are a {}, not a tuple", args.kind())));
        }
        let obj = Object { callable, args, state: None, items: Vec::new(), appended: Vec::new() };
        self.push_made(Value::Object(Rc::new(RefCell::new(obj))));
        Ok(())
    }
    /// Pushes a new mutable container, remembering it.
    fn push_made(&mut self, v: Value) {
        self.made.push(v.clone());
        self.stack.push(v);
    }
    fn global(&mut self, module: String, name: String) {
        self.stack.push(Value::Global(Rc::new(Global { module, name })));
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            let at = self.pos;
            let op = self.u8().map_err(|_| err("ended without STOP"))?;
            use opcode::*;
            match op {
                PROTO => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(err(format!("unsupported protocol {proto}")));
                    }
                }
                FRAME => {
                    self.take(8)?; // FRAME: a length hint only
                }
                STOP => return self.pop(),
                MARK => self.marks.push(self.stack.len()),
                POP => {
                    if self.stack.len() == self.floor() && !self.marks.is_empty() {
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                POP_MARK => {
                    self.pop_mark()?;
                }
                DUP => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                NONE => self.stack.push(Value::None),
                NEWTRUE => self.stack.push(Value::Bool(true)),
                NEWFALSE => self.stack.push(Value::Bool(false)),
                BININT => {
                    let v = i32::from_le_bytes(self.take_array()?);
                    self.stack.push(Value::Int(v.into()));
                }
                BININT1 => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                BININT2 => {
                    let v = u16::from_le_bytes(self.take_array()?);
                    self.stack.push(Value::Int(v.into()));
                }
                LONG1 | LONG4 => {
                    let n = if op == LONG1 {
                        usize::from(self.u8()?)
                    } else {
                        let n = i32::from_le_bytes(self.take_array()?);
                        usize::try_from(n).map_err(|_| err(format!("negative LONG4 length {n}")))?
                    };
                    let v = decode_long(self.take(n)?);
                    self.stack.push(v);
                }
                BINFLOAT => {
                    let v = f64::from_be_bytes(self.take_array()?);
                    self.stack.push(Value::Float(v));
                }
                BINUNICODE => {
                    let n = self.u32()? as usize;
                    let v = self.utf8(n)?;
                    self.stack.push(v);
                }
                SHORT_BINUNICODE => {
                    let n = usize::from(self.u8()?);
                    let v = self.utf8(n)?;
                    self.stack.push(v);
                }
                BINUNICODE8 => {
                    let n = self.len_u64()?;
                    let v = self.utf8(n)?;
                    self.stack.push(v);
                }
                BINBYTES | SHORT_BINBYTES | BINBYTES8 | BINSTRING | SHORT_BINSTRING => {
                    let n = match op {
                        BINBYTES | BINSTRING => self.u32()? as usize,
                        SHORT_BINBYTES | SHORT_BINSTRING => usize::from(self.u8()?),
                        _ => self.len_u64()?,
                    };
                    let bytes = self.take(n)?;
                    // Python-2 strings (BINSTRING, SHORT_BINSTRING) load as text when they can.
                    let v = match (op, std::str::from_utf8(bytes)) {
                        (BINSTRING | SHORT_BINSTRING, Ok(s)) => Value::Str(s.into()),
                        _ => Value::Bytes(bytes.into()),
                    };
                    self.stack.push(v);
                }
                EMPTY_TUPLE => self.stack.push(Value::Tuple(Rc::new([]))),
                TUPLE => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items.into()));
                }
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = usize::from(op - TUPLE1 + 1);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.stack.push(Value::Tuple(items.into()));
                }
                EMPTY_LIST | EMPTY_SET => self.push_made(Value::List(Rc::default())),
                LIST | FROZENSET => {
                    let items = self.pop_mark()?;
                    self.push_made(Value::List(Rc::new(RefCell::new(items))));
                }
                APPEND => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                APPENDS | ADDITEMS => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                EMPTY_DICT => self.push_made(Value::Dict(Rc::default())),
                DICT => {
                    let items = self.pop_mark()?;
                    self.push_made(Value::Dict(Rc::default()));
                    self.set_items(items)?;
                }
                SETITEM => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                SETITEMS => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                GLOBAL => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.global(module, name);
                }
                STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module.as_str(), name.as_str()) {
                        (Some(m), Some(n)) => self.global(m.to_string(), n.to_string()),
                        _ => {
                            return Err(err(format!("STACK_GLOBAL needs two strings at offset {at}")));
                        }
                    }
                }
                REDUCE | NEWOBJ => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.call(callable, args)?;
                }
                NEWOBJ_EX => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.call(callable, args)?;
                }
                BUILD => {
                    let state = self.pop()?;
                    match self.top()? {
                        Value::Object(o) => o.borrow_mut().state = Some(state),
                        other => {
                            return Err(err(format!("BUILD on a {} at offset {at}", other.kind())));
                        }
                    }
                }
                BINPERSID => {
                    let id = self.pop()?;
                    self.stack.push(Value::PersistentId(Rc::new(id)));
                }
                PERSID => {
                    let id = Value::Str(self.line()?.into());
                    self.stack.push(Value::PersistentId(Rc::new(id)));
                }
                BINPUT => {
                    let k = self.u8()?;
                    self.memo_put(k.into())?;
                }
                LONG_BINPUT => {
                    let k = self.u32()?;
                    self.memo_put(k.into())?;
                }
                MEMOIZE => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?;
                }
                BINGET => {
                    let k = self.u8()?;
                    let v = self.memo_get(k.into())?;
                    self.stack.push(v);
                }
                LONG_BINGET => {
                    let k = self.u32()?;
                    let v = self.memo_get(k.into())?;
                    self.stack.push(v);
                }
                PUT | GET => {
                    let line = self.line()?;
                    let k: u64 = line.parse().map_err(|_| err(format!("bad memo index {line:?}")))?;
                    if op == PUT {
                        self.memo_put(k)?;
                    } else {
                        let v = self.memo_get(k)?;
                        self.stack.push(v);
                    }
                }
                _ => return Err(err(format!("unsupported opcode 0x{op:02x} at offset {at}"))),
            }
        }
    }
}

/// Decodes a little-endian two's-complement integer of any length.
fn decode_long(bytes: &[u8]) -> Value {
    if bytes.len() > 8 {
        return Value::BigInt(bytes.into());
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut buf = if negative { [0xffu8; 8] } else { [0u8; 8] };
    buf[..bytes.len()].copy_from_slice(bytes);
    Value::Int(i64::from_le_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `pth` fuzz target (LeakSanitizer): a list appended to itself through the
    /// memo was returned, and `Rc` cycles are never freed.
    #[test]
    fn cyclic_pickles_are_refused() {
        // l = []; l.append(l); return l          (EMPTY_LIST BINPUT 0 BINGET 0 APPEND STOP)
        let e = load(b"\x80\x02]q\x00h\x00a.").unwrap_err().to_string();
        assert!(e.contains("list contains itself") && e.contains("cyclic"), "{e}");
        // d = {}; d['k'] = (d,); return [d]       (a cycle through a tuple, one level down)
        let e = load(b"\x80\x02]q\x00}q\x01X\x01\x00\x00\x00kh\x01\x85sa.").unwrap_err().to_string();
        assert!(e.contains("contains itself"), "{e}");
        // shared but acyclic: [x, x] with x = [] is fine
        assert!(load(b"\x80\x02]q\x00(]q\x01h\x01e.").is_ok());
    }

    /// The cycles a pickle builds and then drops (or leaves behind when it fails) are emptied,
    /// so nothing is leaked; what the value holds is left alone.
    #[test]
    fn cyclic_garbage_is_emptied() {
        // l = []; l.append(l); POP; return [1]
        let (v, made) = load_and_sweep(b"\x80\x02]q\x00h\x00a0]q\x01K\x01a.");
        let v = v.unwrap();
        let Value::List(kept) = &v else { panic!() };
        assert_eq!(kept.borrow().len(), 1);
        assert_eq!(made.len(), 2);
        let Value::List(garbage) = &made[0] else { panic!() };
        assert!(garbage.borrow().is_empty());
        assert_eq!(Rc::strong_count(garbage), 1, "only the test's reference is left");
        // a truncated pickle after building a cycle
        let (v, made) = load_and_sweep(b"\x80\x02]q\x00h\x00a");
        assert!(v.is_err());
        let Value::List(garbage) = &made[0] else { panic!() };
        assert!(garbage.borrow().is_empty() && Rc::strong_count(garbage) == 1);
    }

    #[test]
    fn scalars_and_containers() {
        // {'a': [1, -2, 300, 70000, 2**40, -1], 'b': (1.5, None, True, False), 'c': b'xy'}
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend(b"X\x01\x00\x00\x00a]q\x01(K\x01J\xfe\xff\xff\xffM\x2c\x01J\x70\x11\x01\x00");
        p.extend(b"\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x01\xffe");
        p.extend(b"\x8c\x01b(G\x3f\xf8\x00\x00\x00\x00\x00\x00N\x88\x89t");
        p.extend(b"\x8c\x01cC\x02xyu.");
        let v = load(&p).unwrap();
        let Value::Dict(d) = &v else { panic!("not a dict: {v:?}") };
        let d = d.borrow();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].0.as_str(), Some("a"));
        let Value::List(l) = &d[0].1 else { panic!() };
        let ints: Vec<_> = l.borrow().iter().map(|v| v.as_int().unwrap()).collect();
        assert_eq!(ints, [1, -2, 300, 70000, 1 << 40, -1]);
        let t = d[1].1.as_tuple().unwrap();
        assert!(matches!(t[0], Value::Float(x) if x == 1.5));
        assert!(matches!(t[1], Value::None));
        assert!(matches!((&t[2], &t[3]), (Value::Bool(true), Value::Bool(false))));
        assert!(matches!(&d[2].1, Value::Bytes(b) if &b[..] == b"xy"));
    }

    #[test]
    fn memo_shares_containers_filled_later() {
        // d = {}; memo[0] = d; outer = [d, d]; d['k'] = 1  (filled after being memoised)
        let p = b"\x80\x02}q\x00]q\x01h\x00ah\x00a0h\x00\x8c\x01kK\x01sh\x01.";
        let v = load(p).unwrap();
        let Value::List(l) = &v else { panic!() };
        let l = l.borrow();
        assert_eq!(l.len(), 2);
        for item in l.iter() {
            let Value::Dict(d) = item else { panic!() };
            assert_eq!(d.borrow().len(), 1);
        }
    }

    #[test]
    fn objects_are_recorded_not_executed() {
        // os.system('echo hi') with BUILD state: only recorded.
        let p = b"\x80\x02cos\nsystem\nq\x00\x8c\x07echo hi\x85R}bN.";
        // BUILD leaves the object; then NONE; STOP returns None.
        assert!(matches!(load(p).unwrap(), Value::None));
        let p = b"\x80\x02cos\nsystem\n\x8c\x07echo hi\x85R}b.";
        let v = load(p).unwrap();
        assert_eq!(v.kind(), "os.system object");
        let Value::Object(o) = &v else { panic!() };
        assert!(o.borrow().state.is_some());
    }

    #[test]
    fn malformed_input_is_an_error() {
        let cases: &[&[u8]] = &[
            b"",
            b"\x80\x02",
            b"\x80\x02K",
            b"\x80\x02t.",
            b"\x80\x02(t",
            b"\x80\x02h\x05.",
            b"\x80\x02X\xff\xff\xff\xffab.",
            b"\x80\x02X\x02\x00\x00\x00\xff\xfe.",
            b"\x80\x02K\x01K\x02s.",
            b"\x80\x02K\x01(a.",
            b"\x80\x02\xff.",
            b"\x80\x09N.",
            b"\x80\x02K\x01K\x02R.",
            b"\x80\x02cos\nsys",
            b".",
        ];
        for c in cases {
            assert!(matches!(load(c), Err(Error::Format(_))), "{c:?} was accepted");
        }
        let msg = load(b"\x80\x02\xff.").unwrap_err().to_string();
        assert!(msg.contains("unsupported opcode 0xff at offset 2"), "{msg}");
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        // ((((...(),),)...),) a million levels deep, one byte per level; and a deep chain of
        // objects, each made by calling the previous one.
        let mut p = b"\x80\x02)".to_vec();
        p.extend(std::iter::repeat_n(0x85u8, 1_000_000));
        p.push(b'.');
        assert_eq!(load(&p).unwrap().kind(), "tuple of 1");
        let mut p = b"\x80\x02cm\nf\n".to_vec();
        p.extend(std::iter::repeat_n(*b")R", 500_000).flatten());
        p.push(b'.');
        assert_eq!(load(&p).unwrap().kind(), "object");
    }

    #[test]
    fn every_truncation_and_byte_flip_of_a_torch_pickle_is_safe() {
        let path = crate::record::shared_dir().join("golden/pth/tiny_views.pth");
        let file = std::fs::File::open(path).unwrap();
        let mut zip = zip::ZipArchive::new(file).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name("tiny_views/data.pkl").unwrap(), &mut data).unwrap();
        assert!(load(&data).is_ok());
        for cut in 0..data.len() - 1 {
            assert!(load(&data[..cut]).is_err(), "cut {cut}");
        }
        for i in 0..data.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut d = data.clone();
                d[i] ^= x;
                let _ = load(&d);
            }
        }
    }
}
