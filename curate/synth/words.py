"""The words problems are made of: people, objects, places, and the scene sentences that
open a problem, so that two problems of one family differ in more than their digits."""

NAMES = (
    "Maria", "Ahmed", "Chen", "Priya", "Lucas", "Sofia", "Kenji", "Amara", "Diego", "Elena",
    "Omar", "Hana", "Ivan", "Zoe", "Ravi", "Lena", "Tariq", "Mei", "Jonas", "Nadia",
)  # fmt: skip
ITEMS = ("pencils", "stickers", "marbles", "stamps", "cards", "beads", "apples", "coins", "shells", "buttons")
FRIENDS = ("a friend", "a cousin", "a neighbor", "a classmate", "a teacher", "a brother", "a sister")
CITIES = ("Oslo", "Denver", "Hohhot", "Calgary", "Tromso", "Ulaanbaatar", "Helsinki", "Anchorage", "Kazan", "Quebec")
MEASURES = (
    ("mass", "parcels", "kilograms"),
    ("length", "boards", "centimeters"),
    ("time", "laps", "seconds"),
    ("height", "seedlings", "millimeters"),
    ("volume", "bottles", "milliliters"),
    ("price", "notebooks", "dollars"),
)
LIQUIDS = ("water", "juice", "milk", "lemonade", "tea", "syrup", "broth")
TRAILS = ("hiking trail", "river path", "forest loop", "coastal walk", "mountain track")
SETTINGS = ("math club", "number theory class", "puzzle book", "contest warm-up", "homework set")
CLUBS = ("chess club", "robotics club", "choir", "debate team", "art society", "drama group")
THINGS = ("books", "trophies", "plants", "photos", "mugs", "models", "vases")
FLYERS = ("drone", "bird", "paper plane", "kite", "bee", "model glider", "pigeon", "balloon")
PAIRS = (
    ("cats", "dogs"), ("red marbles", "blue marbles"), ("apples", "pears"), ("novels", "comics"),
    ("tulips", "roses"), ("stamps", "coins"), ("pens", "pencils"), ("goats", "sheep"),
)  # fmt: skip
GAMES = ("quiz", "card game", "darts match", "video game", "spelling bee", "trivia night")
SHOPS = ("ice cream shop", "bakery", "juice bar", "tea house", "pizza stand")
RACES = ("sack race", "marathon", "swimming final", "cycling sprint", "relay heat")
FOODS = ("pie", "pizza", "cake", "watermelon", "loaf of bread", "chocolate bar")
SCENES = (
    "The {place} is crowded {when}.",
    "This question was posed at the {event} in the {place}.",
    "The {event} is coming up, and the {place} is busy {when}.",
    "Here is a puzzle from the {event}.",
    "Everyone at the {place} is talking about the {event}.",
    "The {place} hosts the {event} {when}.",
)
EVENTS = (
    "school fair", "science fair", "summer camp", "math contest", "garage sale",
    "charity run", "book swap", "harvest festival", "chess tournament", "county show",
)  # fmt: skip
PLACES = (
    "library", "community center", "bakery", "market", "workshop",
    "greenhouse", "train station", "museum", "town hall", "sports club",
)  # fmt: skip
WHENS = ("on Monday", "this weekend", "after lunch", "in the morning", "on a rainy day", "before dinner", "at noon")
