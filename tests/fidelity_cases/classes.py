# Fidelity cases: classes, dunder methods, properties, inheritance, dataclasses, enums.
# Format: see tests/fidelity_cases/__init__.py. Not an importable module.

# %% class_vector_dunders worker
class Vec:
    def __init__(self, x, y):
        self.x, self.y = x, y
    def __repr__(self):
        return f"Vec({self.x}, {self.y})"
    def __add__(self, o):
        return Vec(self.x + o.x, self.y + o.y)
    def __sub__(self, o):
        return Vec(self.x - o.x, self.y - o.y)
    def __mul__(self, k):
        return Vec(self.x * k, self.y * k)
    __rmul__ = __mul__
    def __eq__(self, o):
        return isinstance(o, Vec) and (self.x, self.y) == (o.x, o.y)
    def __hash__(self):
        return hash((self.x, self.y))
    def __abs__(self):
        return (self.x ** 2 + self.y ** 2) ** 0.5
    def __neg__(self):
        return Vec(-self.x, -self.y)
    def __bool__(self):
        return bool(self.x or self.y)
v = Vec(3, 4)
print(v + Vec(1, 1), v - v, 2 * v, v * 2, -v, abs(v))
print(v == Vec(3, 4), v != Vec(0, 0), bool(Vec(0, 0)), len({v, Vec(3, 4)}))
repr(v), str(v), f"{v}", str([v])

# %% class_str_vs_repr
class Money:
    def __init__(self, cents):
        self.cents = cents
    def __str__(self):
        return f"${self.cents / 100:.2f}"
    def __repr__(self):
        return f"Money({self.cents})"
m = Money(1234)
print(m, [m], f"{m} {m!r}", str(m), repr(m))
m

# %% class_container_protocol
class Bag:
    def __init__(self, *items):
        self._items = list(items)
    def __len__(self):
        return len(self._items)
    def __getitem__(self, i):
        return self._items[i]
    def __setitem__(self, i, v):
        self._items[i] = v
    def __delitem__(self, i):
        del self._items[i]
    def __contains__(self, x):
        print("contains called")
        return x in self._items
    def __iter__(self):
        return iter(self._items)
b = Bag(1, 2, 3, 4)
b[0] = 10
del b[1]
print(len(b), b[-1], b[0:2], 3 in b, 99 in b, list(b), list(reversed(b)))
sorted(b, reverse=True), bool(Bag()), bool(b)

# %% getitem_only_old_iteration_protocol
class Squares:
    def __getitem__(self, i):
        if i >= 5:
            raise IndexError(i)
        return i * i
list(Squares()), 9 in Squares(), 10 in Squares()

# %% class_iterator_protocol
class CountUp:
    def __init__(self, stop):
        self.i = 0
        self.stop = stop
    def __iter__(self):
        return self
    def __next__(self):
        if self.i >= self.stop:
            raise StopIteration
        self.i += 1
        return self.i
c = CountUp(3)
print(list(c), list(c))
sum(CountUp(10)), [x for x in CountUp(2)]

# %% total_ordering_decorator
import functools
@functools.total_ordering
class Ver:
    def __init__(self, s):
        self.parts = tuple(int(p) for p in s.split("."))
    def __eq__(self, o):
        return self.parts == o.parts
    def __lt__(self, o):
        return self.parts < o.parts
    def __repr__(self):
        return "v" + ".".join(map(str, self.parts))
vs = [Ver("1.10"), Ver("1.2"), Ver("1.2.1"), Ver("0.9")]
print(sorted(vs), max(vs), Ver("1.2") >= Ver("1.1"))
min(vs)

# %% comparison_not_supported raises=TypeError
class A:
    pass
sorted([A(), A()])

# %% reflected_and_inplace_operators
class Num:
    def __init__(self, v):
        self.v = v
    def __add__(self, o):
        print("add")
        return Num(self.v + (o.v if isinstance(o, Num) else o))
    def __radd__(self, o):
        print("radd")
        return Num(o + self.v)
    def __iadd__(self, o):
        print("iadd")
        self.v += o
        return self
    def __repr__(self):
        return f"Num({self.v})"
n = Num(1)
print(n + 2, 3 + n)
same = n
n += 10
print(n is same, sum([Num(1), Num(2)], Num(0)), sum([Num(5)]))
n

# %% callable_object_and_context_manager raises=ValueError
class Counter:
    def __init__(self):
        self.n = 0
    def __call__(self, step=1):
        self.n += step
        return self.n
    def __enter__(self):
        print("enter")
        return self
    def __exit__(self, et, ev, tb):
        print("exit", repr(ev))
        return et is KeyError
c = Counter()
with c as cc:
    cc()
    cc(5)
with c:
    raise KeyError("swallowed")
print(c.n, callable(c))
with c:
    raise ValueError("escapes")

# %% with_multiple_items_inner_suppresses
class CM:
    def __init__(self, name, suppress=False):
        self.name, self.suppress = name, suppress
    def __enter__(self):
        print("enter", self.name)
        return self.name
    def __exit__(self, et, ev, tb):
        print("exit", self.name, repr(ev))
        return self.suppress
with CM("a") as a, CM("b", suppress=True) as b:
    print("body", a, b)
    raise RuntimeError("x")
print("continued")

# %% with_exit_runs_on_return
class Guard:
    def __enter__(self):
        print("acquire")
    def __exit__(self, *exc):
        print("release")
def f():
    with Guard():
        return "returned"
    return "not here"
f()

# %% property_getter_setter raises=AttributeError
class Temp:
    def __init__(self, c):
        self._c = c
    @property
    def f(self):
        return self._c * 9 / 5 + 32
    @f.setter
    def f(self, val):
        self._c = (val - 32) * 5 / 9
    @property
    def c(self):
        return self._c
t = Temp(100)
print(t.f)
t.f = 32
print(t.c)
t.c = 5

# %% property_deleter_and_computed
class Lazy:
    def __init__(self):
        self._cache = None
        self.computed = 0
    @property
    def value(self):
        if self._cache is None:
            self.computed += 1
            self._cache = sum(range(100))
        return self._cache
    @value.deleter
    def value(self):
        self._cache = None
z = Lazy()
z.value
z.value
del z.value
z.value, z.computed

# %% classmethod_and_staticmethod
class Pizza:
    count = 0
    def __init__(self, toppings):
        self.toppings = toppings
        Pizza.count += 1
    @classmethod
    def margherita(cls):
        return cls(["mozzarella", "tomato"])
    @staticmethod
    def area(r):
        return round(3.14159 * r * r, 2)
p = Pizza.margherita()
p.toppings, Pizza.area(2), p.area(1), Pizza.count

# %% classmethod_cls_is_subclass
class Base:
    kind = "base"
    @classmethod
    def make(cls):
        return cls()
    def who(self):
        return type(self).kind
class Child(Base):
    kind = "child"
Child.make().who(), Base.make().who(), isinstance(Child.make(), Base)

# %% zero_argument_super_mro
class A:
    def hello(self):
        return "A"
class B(A):
    def hello(self):
        return "B>" + super().hello()
class C(A):
    def hello(self):
        return "C>" + super().hello()
class D(B, C):
    def hello(self):
        return "D>" + super().hello()
D().hello(), B().hello(), [k is A for k in D.mro()]

# %% super_in_classmethod_and_property
class Base:
    @classmethod
    def create(cls):
        return f"created {cls.label}"
    @property
    def info(self):
        return "base-info"
class Derived(Base):
    label = "derived"
    @classmethod
    def create(cls):
        return super().create() + "!"
    @property
    def info(self):
        return super().info + "+derived"
Derived.create(), Derived().info

# %% inheritance_and_isinstance
class Animal:
    sound = "..."
    def speak(self):
        return f"{self.name()} says {self.sound}"
    def name(self):
        return "animal"
class Dog(Animal):
    sound = "woof"
    def name(self):
        return "dog"
class Puppy(Dog):
    sound = "yip"
pets = [Animal(), Dog(), Puppy()]
print([p.speak() for p in pets])
isinstance(pets[2], Dog), issubclass(Dog, Puppy), type(pets[1]) is Dog, isinstance(3, (str, int))

# %% class_vs_instance_attributes
class K:
    shared = []
    def __init__(self):
        self.own = []
a, b = K(), K()
a.shared.append(1)
a.own.append(2)
b.shared = ["rebound"]
K.shared, a.shared, b.shared, b.own

# %% instance_private_attributes_allowed
class Account:
    def __init__(self, owner):
        self.owner = owner
        self._balance = 0
    def deposit(self, amt):
        if amt <= 0:
            raise ValueError("amount must be positive")
        self._balance += amt
        return self._balance
acct = Account("kim")
acct.deposit(50)
try:
    acct.deposit(-1)
except ValueError as e:
    print("refused:", e)
acct._balance

# %% missing_attribute_on_instance raises=AttributeError
class P:
    def __init__(self):
        self.x = 1
p = P()
print(p.x)
p.y

# %% class_scope_comprehension_quirk raises=NameError
class A:
    factor = 3
    vals = [factor * i for i in range(3)]

# %% class_scope_comprehension_first_iterable_ok
class A:
    items = [1, 2, 3]
    doubled = [x * 2 for x in items]
A.doubled

# %% class_body_runs_in_order
print("before")
class Z:
    print("in body")
    a = 1
    b = a + 1
print("after", Z.b)

# %% method_bound_and_unbound
class G:
    def __init__(self, n):
        self.n = n
    def times(self, k):
        return self.n * k
g = G(3)
bound = g.times
bound(2), G.times(g, 5), list(map(G(2).times, [1, 2, 3]))

# %% class_with_eq_is_unhashable raises=TypeError
class E:
    def __eq__(self, other):
        return True
print(E() == 5)
{E()}

# %% dataclass_defaults_and_factory worker
from dataclasses import dataclass, field
@dataclass
class Item:
    name: str
    price: float = 0.0
    tags: list = field(default_factory=list)
a = Item("pen", 1.5)
b = Item("pen", 1.5)
a.tags.append("office")
print(a)
print(a == b, Item("x") == Item("x"), b.tags is Item("y").tags)
repr(b)

# %% dataclass_order_and_frozen raises=FrozenInstanceError
from dataclasses import dataclass
@dataclass(order=True, frozen=True)
class P:
    x: int
    y: int = 0
ps = sorted([P(2, 1), P(1, 5), P(1, 2)])
print(ps, hash(P(1, 2)) == hash(P(1, 2)), len({P(1, 2), P(1, 2)}), P(1) < P(1, 1))
ps[0].x = 9

# %% dataclass_post_init_asdict_replace
from dataclasses import dataclass, field, asdict, astuple, replace
@dataclass
class Rect:
    w: int
    h: int
    area: int = field(init=False)
    def __post_init__(self):
        self.area = self.w * self.h
r = Rect(2, 3)
print(asdict(r), astuple(r))
repr(replace(r, w=10))

# %% dataclass_mutable_default_rejected raises=ValueError
from dataclasses import dataclass
@dataclass
class Bad:
    items: list = []

# %% dataclass_inheritance_and_fields
from dataclasses import dataclass, fields
@dataclass
class Base:
    a: int
    b: str = "b"
@dataclass
class Sub(Base):
    c: float = 1.0
s = Sub(1, c=2.5)
print(s)
[f.name for f in fields(s)], Sub(5) == Sub(5, "b", 1.0)

# %% enum_basics
from enum import Enum, auto
class Color(Enum):
    RED = auto()
    GREEN = auto()
    BLUE = "b"
print(Color.RED, Color.RED.value, Color.BLUE.name, Color("b"), Color["GREEN"], repr(Color.GREEN))
print(list(Color), len(Color), Color.RED is Color(1))
[c.name for c in Color], Color.RED == 1, Color.RED in Color

# %% enum_intenum_flag_strenum
from enum import IntEnum, Flag, StrEnum, auto
class Pri(IntEnum):
    LOW = 1
    HIGH = 3
class Perm(Flag):
    R = auto()
    W = auto()
    X = auto()
class Mode(StrEnum):
    FAST = auto()
    SLOW = "slow-mode"
rw = Perm.R | Perm.W
print(Pri.HIGH > Pri.LOW, Pri.LOW + 1, sorted([Pri.HIGH, Pri.LOW]), f"{Pri.HIGH}", str(Pri.HIGH))
print(Perm.R in rw, Perm.X in rw, rw, list(rw))
print(Mode.FAST, Mode.SLOW.upper(), Mode("fast") is Mode.FAST)
repr(Pri(3)), repr(rw)

# %% enum_bad_value raises=ValueError
from enum import Enum
class E(Enum):
    A = 1
E(2)

# %% enum_with_methods_and_tuple_values
from enum import Enum
class Planet(Enum):
    MERCURY = (3.303e23, 2.4397e6)
    EARTH = (5.976e24, 6.37814e6)
    def __init__(self, mass, radius):
        self.mass = mass
        self.radius = radius
    @property
    def gravity(self):
        return round(6.673e-11 * self.mass / (self.radius ** 2), 2)
Planet.EARTH.gravity, Planet.MERCURY.value, Planet.EARTH.name

# %% namedtuple_basic
from collections import namedtuple
Pt = namedtuple("Pt", "x y")
p = Pt(1, y=2)
x, y = p
print(p, p.x + p[1], x * y, p == (1, 2), Pt(*[3, 4]))
sorted([Pt(2, 1), Pt(1, 9)]), isinstance(p, tuple)

# %% typing_namedtuple_typeddict
from typing import NamedTuple, TypedDict, Optional, Callable, List
class Emp(NamedTuple):
    name: str
    id: int = 3
class Movie(TypedDict):
    title: str
    year: int
def f(x: Optional[int] = None, cb: Callable[[int], int] = abs) -> List[int]:
    return [cb(x or -1)]
m: Movie = {"title": "Up", "year": 2009}
e = Emp("guido")
print(e, e.id, f(), f(-5, lambda v: v * 2), m)
isinstance(e, tuple), type(m) is dict

# %% annotated_name_without_value
x: int
y: str = "set"
try:
    print(x)
except NameError:
    print("x not bound")
y

# %% custom_exception_hierarchy
class AppError(Exception):
    pass
class NotFound(AppError):
    def __init__(self, what):
        self.what = what
    def __str__(self):
        return f"{self.what} not found"
try:
    raise NotFound("user 7")
except AppError as e:
    print("caught:", e, e.what, e.args, isinstance(e, Exception))
str(NotFound("x")), repr(AppError("y"))

# %% super_init_chain
# super().__init__ is an allowed dunder (policy ALLOWED_DUNDERS); agents write it all the time.
class Shape:
    def __init__(self, name):
        self.name = name
class Square(Shape):
    def __init__(self, side):
        super().__init__("square")
        self.side = side
class ValidationError(ValueError):
    def __init__(self, field, msg):
        super().__init__(f"{field}: {msg}")
        self.field = field
sq = Square(3)
try:
    raise ValidationError("age", "must be positive")
except ValueError as e:
    print(e, e.field, e.args)
sq.name, sq.side
