"""Word lists the marketplace simulator composes names, dishes and products from (data only)."""

from __future__ import annotations

from dataclasses import dataclass

# Neighbourhood centres of one city (Berlin): merchants and homes cluster around them.
NEIGHBOURHOODS: tuple[tuple[str, float, float], ...] = (
    ("Mitte", 52.5200, 13.4050),
    ("Kreuzberg", 52.4970, 13.4110),
    ("Neukölln", 52.4810, 13.4350),
    ("Prenzlauer Berg", 52.5390, 13.4240),
    ("Friedrichshain", 52.5150, 13.4540),
    ("Charlottenburg", 52.5160, 13.3040),
    ("Schöneberg", 52.4830, 13.3530),
    ("Wedding", 52.5490, 13.3660),
    ("Moabit", 52.5300, 13.3420),
    ("Tempelhof", 52.4670, 13.3860),
)

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_BAND_WEIGHTS = (0.17, 0.33, 0.22, 0.14, 0.09, 0.05)
GENDERS = ("female", "male", "other", "")
GENDER_WEIGHTS = (0.46, 0.44, 0.02, 0.08)


@dataclass(frozen=True)
class Protein:
    """A protein choice that turns a dish template into a dish ("Chicken" + "Tikka Masala")."""

    name: str
    meat: bool  # meat or fish: vegetarians never order it
    vegan: bool
    price_delta: float


PROTEINS = {
    p.name: p
    for p in (
        Protein("Chicken", True, False, 1.5),
        Protein("Lamb", True, False, 3.0),
        Protein("Beef", True, False, 2.5),
        Protein("Pork", True, False, 1.5),
        Protein("Duck", True, False, 3.5),
        Protein("Prawn", True, False, 3.5),
        Protein("Salmon", True, False, 3.0),
        Protein("Tuna", True, False, 3.0),
        Protein("Paneer", False, False, 1.0),
        Protein("Halloumi", False, False, 1.5),
        Protein("Mozzarella", False, False, 0.5),
        Protein("Tofu", False, True, 0.5),
        Protein("Vegetable", False, True, 0.0),
        Protein("Chickpea", False, True, 0.0),
        Protein("Mushroom", False, True, 0.5),
        Protein("Falafel", False, True, 0.5),
        Protein("Avocado", False, True, 1.0),
        Protein("Cucumber", False, True, 0.0),
    )
}


@dataclass(frozen=True)
class Dish:
    """A dish template of a cuisine.

    Attributes:
        base: title without protein ("Tikka Masala").
        price: typical price in EUR before the protein's delta.
        diet: "protein" (a protein is prefixed and decides the diet), "meat", "vegetarian" or "vegan".
        ingredients: comma-separated, for the description.
        spice: 0 (mild) .. 3 (hot).
        category: overrides the cuisine as item category ("dessert", "drinks", "sushi").
    """

    base: str
    price: float
    diet: str
    ingredients: str
    spice: int = 0
    category: str | None = None


@dataclass(frozen=True)
class Cuisine:
    """A restaurant category: its menu templates, proteins and merchant names."""

    name: str
    weight: float  # share of restaurants
    proteins: tuple[str, ...]
    dishes: tuple[Dish, ...]
    name_heads: tuple[str, ...]
    name_tails: tuple[str, ...]
    halal_share: float = 0.0


def _dishes(*rows: tuple) -> tuple[Dish, ...]:
    return tuple(Dish(*row) for row in rows)


CUISINES: tuple[Cuisine, ...] = (
    Cuisine(
        "italian",
        0.10,
        ("Chicken", "Prawn", "Mushroom", "Vegetable", "Salmon"),
        _dishes(
            ("Spaghetti Carbonara", 12.5, "meat", "spaghetti, pancetta, egg yolk, pecorino, black pepper"),
            ("Penne Arrabbiata", 10.5, "vegan", "penne, tomato, garlic, chilli, olive oil", 2),
            ("Risotto", 13.0, "protein", "arborio rice, parmesan, white wine, butter"),
            ("Lasagne", 12.0, "protein", "pasta sheets, tomato ragù, béchamel, parmesan"),
            ("Tagliatelle Bolognese", 12.5, "meat", "tagliatelle, beef ragù, tomato, parmesan"),
            ("Gnocchi al Pesto", 11.5, "vegetarian", "potato gnocchi, basil pesto, pine nuts, parmesan"),
            ("Spinach Ricotta Ravioli", 12.0, "vegetarian", "ravioli, spinach, ricotta, sage butter"),
            ("Linguine", 13.5, "protein", "linguine, garlic, cherry tomatoes, parsley, chilli", 1),
            ("Caprese Salad", 9.0, "vegetarian", "mozzarella, tomato, basil, olive oil"),
            ("Bruschetta", 6.5, "vegan", "toasted bread, tomato, garlic, basil"),
            ("Tiramisu", 6.5, "vegetarian", "mascarpone, espresso, savoiardi, cocoa", 0, "dessert"),
            ("Panna Cotta", 6.0, "vegetarian", "cream, vanilla, berry coulis", 0, "dessert"),
            ("San Pellegrino 0.5L", 3.0, "vegan", "sparkling mineral water", 0, "drinks"),
        ),
        ("Luigi's", "Nonna Rosa's", "Marco's", "Bella", "Casa", "Da Enzo", "Piccolo", "Sofia's"),
        ("Trattoria", "Osteria", "Pasta Bar", "Cucina", "Kitchen"),
    ),
    Cuisine(
        "pizza",
        0.11,
        ("Chicken", "Vegetable", "Mushroom", "Mozzarella"),
        _dishes(
            ("Margherita Pizza", 9.5, "vegetarian", "tomato, mozzarella, basil"),
            ("Pepperoni Pizza", 11.5, "meat", "tomato, mozzarella, pepperoni", 1),
            ("Quattro Formaggi Pizza", 12.0, "vegetarian", "mozzarella, gorgonzola, parmesan, fontina"),
            ("Diavola Pizza", 12.0, "meat", "tomato, mozzarella, spicy salami, chilli", 3),
            ("Funghi Pizza", 10.5, "vegetarian", "tomato, mozzarella, mushrooms, oregano"),
            ("Hawaiian Pizza", 11.0, "meat", "tomato, mozzarella, ham, pineapple"),
            ("Vegan Garden Pizza", 11.5, "vegan", "tomato, vegan cheese, peppers, courgette, olives"),
            ("Calzone", 12.0, "protein", "folded pizza, ricotta, mozzarella, tomato"),
            ("Prosciutto Rucola Pizza", 13.0, "meat", "tomato, mozzarella, prosciutto, rocket, parmesan"),
            ("Garlic Bread", 5.0, "vegetarian", "pizza dough, garlic butter, parsley"),
            ("Chocolate Lava Cake", 6.0, "vegetarian", "dark chocolate, butter, egg", 0, "dessert"),
            ("Cola 0.33L", 2.5, "vegan", "cola", 0, "drinks"),
        ),
        ("Mamma Mia", "Napoli", "Slice of", "Roma", "Forno", "Vesuvio", "Big Tony's", "Stone Oven"),
        ("Pizza", "Pizzeria", "Pizza Co.", "Pizza Bar"),
    ),
    Cuisine(
        "indian",
        0.09,
        ("Chicken", "Lamb", "Prawn", "Paneer", "Chickpea", "Vegetable"),
        _dishes(
            ("Tikka Masala", 13.0, "protein", "tomato, cream, garam masala, fenugreek, basmati rice", 1),
            ("Korma", 12.5, "protein", "cashew, cream, cardamom, basmati rice"),
            ("Vindaloo", 13.0, "protein", "chilli, vinegar, garlic, potato, basmati rice", 3),
            ("Biryani", 14.0, "protein", "basmati rice, saffron, fried onion, raita", 1),
            ("Jalfrezi", 13.0, "protein", "peppers, onion, green chilli, tomato", 2),
            ("Saag", 12.0, "protein", "spinach, garlic, ginger, cream", 1),
            ("Dal Makhani", 10.5, "vegetarian", "black lentils, butter, cream, tomato", 1),
            ("Chana Masala", 10.0, "vegan", "chickpeas, tomato, onion, amchur", 2),
            ("Vegetable Samosas", 5.5, "vegan", "pastry, potato, peas, cumin, tamarind chutney", 1),
            ("Garlic Naan", 3.5, "vegetarian", "flatbread, garlic, butter, coriander"),
            ("Gulab Jamun", 5.0, "vegetarian", "milk dumplings, rose syrup, cardamom", 0, "dessert"),
            ("Mango Lassi", 4.0, "vegetarian", "mango, yoghurt, cardamom", 0, "drinks"),
        ),
        ("Taj", "Bombay", "Delhi", "Masala", "Spice of", "Maharaja", "Saffron", "Namaste"),
        ("Palace", "Kitchen", "House", "Curry House", "Tandoori"),
        halal_share=0.5,
    ),
    Cuisine(
        "chinese",
        0.08,
        ("Chicken", "Beef", "Pork", "Prawn", "Tofu", "Vegetable", "Duck"),
        _dishes(
            ("Kung Pao", 12.5, "protein", "peanuts, dried chilli, sichuan pepper, spring onion, rice", 2),
            ("Sweet and Sour", 12.0, "protein", "pineapple, peppers, sweet and sour sauce, rice"),
            ("Chow Mein", 11.5, "protein", "egg noodles, bean sprouts, cabbage, soy sauce"),
            ("Fried Rice", 10.5, "protein", "jasmine rice, egg, peas, spring onion"),
            ("Mapo Tofu", 11.5, "vegan", "silken tofu, doubanjiang, sichuan pepper, rice", 3),
            ("Dumplings x8", 8.5, "protein", "wheat wrappers, ginger, black vinegar dip"),
            ("Crispy Peking Duck", 18.0, "meat", "roast duck, pancakes, hoisin, cucumber, spring onion"),
            ("Hot and Sour Soup", 6.0, "vegetarian", "tofu, bamboo shoots, mushrooms, egg, white pepper", 2),
            ("Vegetable Spring Rolls", 5.0, "vegan", "pastry, cabbage, carrot, glass noodles, sweet chilli"),
            ("Sesame Balls", 4.5, "vegan", "glutinous rice, red bean paste, sesame", 0, "dessert"),
            ("Jasmine Tea", 3.0, "vegan", "jasmine green tea", 0, "drinks"),
        ),
        ("Golden", "Jade", "Lucky", "Red Lantern", "Great Wall", "Panda", "Sichuan", "Dragon"),
        ("Garden", "Palace", "Kitchen", "House", "Noodle Bar"),
    ),
    Cuisine(
        "japanese",
        0.08,
        ("Salmon", "Tuna", "Prawn", "Avocado", "Cucumber", "Tofu"),
        _dishes(
            ("Avocado Roll", 9.5, "protein", "sushi rice, nori, avocado, sesame", 0, "sushi"),
            ("Nigiri x4", 10.0, "protein", "sushi rice, wasabi, pickled ginger", 0, "sushi"),
            ("Maki x8", 8.0, "protein", "sushi rice, nori, soy sauce", 0, "sushi"),
            ("Dragon Roll", 14.5, "meat", "tempura prawn, eel, avocado, unagi sauce", 0, "sushi"),
            ("California Roll", 10.5, "meat", "surimi, avocado, cucumber, tobiko", 0, "sushi"),
            ("Sashimi Platter", 17.0, "meat", "salmon, tuna, yellowtail, daikon", 0, "sushi"),
            ("Tonkotsu Ramen", 13.5, "meat", "pork broth, chashu, egg, noodles, nori"),
            ("Miso Ramen", 12.5, "vegetarian", "miso broth, corn, egg, noodles, spring onion", 1),
            ("Chicken Katsu Curry", 13.0, "meat", "breaded chicken, japanese curry, rice", 1),
            ("Teriyaki Bowl", 12.5, "protein", "teriyaki glaze, rice, sesame, pickles"),
            ("Gyoza x6", 7.0, "protein", "pan-fried dumplings, ponzu"),
            ("Edamame", 4.5, "vegan", "soy beans, sea salt"),
            ("Matcha Ice Cream", 5.0, "vegetarian", "matcha, cream", 0, "dessert"),
            ("Ramune Soda", 3.5, "vegan", "japanese lemonade", 0, "drinks"),
        ),
        ("Sakura", "Tokyo", "Koi", "Umami", "Kyoto", "Hana", "Osaka", "Zen"),
        ("Sushi", "Sushi Bar", "Ramen House", "Izakaya", "Kitchen"),
    ),
    Cuisine(
        "mexican",
        0.07,
        ("Chicken", "Beef", "Pork", "Prawn", "Vegetable", "Chickpea"),
        _dishes(
            ("Burrito", 11.5, "protein", "flour tortilla, rice, black beans, salsa, sour cream", 1),
            ("Tacos x3", 10.5, "protein", "corn tortillas, pico de gallo, lime, coriander", 1),
            ("Quesadilla", 10.0, "protein", "flour tortilla, cheddar, peppers, jalapeños", 1),
            ("Enchiladas", 12.0, "protein", "corn tortillas, red chilli sauce, cheese", 2),
            ("Burrito Bowl", 11.5, "protein", "rice, black beans, corn, guacamole, salsa", 1),
            ("Loaded Nachos", 8.5, "vegetarian", "tortilla chips, cheese, jalapeños, salsa, sour cream", 2),
            ("Guacamole & Chips", 6.0, "vegan", "avocado, lime, onion, tortilla chips"),
            ("Churros", 5.5, "vegetarian", "fried dough, cinnamon sugar, chocolate dip", 0, "dessert"),
            ("Horchata", 4.0, "vegan", "rice milk, cinnamon", 0, "drinks"),
        ),
        ("El Sol", "Casa", "La Cantina", "Taco", "Chilango", "Frida's", "Cielo", "Agave"),
        ("Taqueria", "Cantina", "Mexicana", "Burritos", "Kitchen"),
    ),
    Cuisine(
        "thai",
        0.07,
        ("Chicken", "Beef", "Prawn", "Tofu", "Vegetable", "Duck"),
        _dishes(
            ("Green Curry", 12.5, "protein", "coconut milk, green chilli, thai basil, bamboo shoots, rice", 2),
            ("Red Curry", 12.5, "protein", "coconut milk, red curry paste, peppers, rice", 2),
            ("Pad Thai", 12.0, "protein", "rice noodles, tamarind, peanuts, egg, bean sprouts", 1),
            ("Massaman Curry", 13.0, "protein", "coconut milk, potato, peanuts, cinnamon, rice", 1),
            ("Tom Yum Soup", 8.5, "protein", "lemongrass, galangal, lime leaves, chilli", 3),
            ("Pad Krapow", 12.0, "protein", "holy basil, chilli, garlic, fried egg, rice", 3),
            ("Papaya Salad", 8.0, "vegan", "green papaya, lime, chilli, peanuts", 3),
            ("Mango Sticky Rice", 6.0, "vegan", "glutinous rice, mango, coconut cream", 0, "dessert"),
            ("Thai Iced Tea", 4.0, "vegetarian", "black tea, condensed milk", 0, "drinks"),
        ),
        ("Bangkok", "Siam", "Lotus", "Chiang Mai", "Thai Orchid", "Baan", "Phuket", "Kao"),
        ("Kitchen", "Street Food", "Thai", "House", "Garden"),
    ),
    Cuisine(
        "burgers",
        0.10,
        (),
        _dishes(
            ("Classic Cheeseburger", 10.5, "meat", "beef patty, cheddar, pickles, onion, brioche bun"),
            ("Bacon Burger", 12.0, "meat", "beef patty, bacon, cheddar, bbq sauce"),
            ("Double Smash Burger", 13.5, "meat", "two beef patties, american cheese, burger sauce"),
            ("Crispy Chicken Burger", 11.0, "meat", "fried chicken, slaw, pickles, chipotle mayo", 1),
            ("Veggie Burger", 10.5, "vegetarian", "halloumi, roasted peppers, rocket, aioli"),
            ("Vegan Beyond Burger", 12.0, "vegan", "plant patty, vegan cheese, lettuce, tomato"),
            ("Jalapeño Burger", 12.0, "meat", "beef patty, jalapeños, pepper jack, chilli mayo", 3),
            ("Fries", 3.5, "vegan", "potatoes, sea salt"),
            ("Sweet Potato Fries", 4.5, "vegan", "sweet potatoes, paprika salt"),
            ("Onion Rings", 4.5, "vegetarian", "onions, beer batter"),
            ("Chocolate Milkshake", 5.0, "vegetarian", "ice cream, milk, chocolate", 0, "drinks"),
            ("Brownie", 4.5, "vegetarian", "dark chocolate, walnuts", 0, "dessert"),
        ),
        ("Big Bite", "Burger", "Smash", "Patty &", "The Grill", "Brooklyn", "Bun &", "Route 66"),
        ("Burgers", "Bros", "Joint", "Diner", "Co."),
    ),
    Cuisine(
        "vegan",
        0.05,
        ("Tofu", "Chickpea", "Falafel", "Mushroom", "Avocado"),
        _dishes(
            ("Buddha Bowl", 11.5, "protein", "quinoa, roasted sweet potato, kale, tahini"),
            ("Wrap", 9.5, "protein", "whole wheat tortilla, hummus, salad, pickled onion"),
            ("Lentil Curry", 10.5, "vegan", "red lentils, coconut milk, spinach, rice", 1),
            ("Tofu Scramble", 9.0, "vegan", "tofu, turmeric, spinach, sourdough"),
            ("Jackfruit Tacos", 10.5, "vegan", "pulled jackfruit, slaw, corn tortillas", 1),
            ("Vegan Mac & Cheese", 10.0, "vegan", "macaroni, cashew cheese sauce, breadcrumbs"),
            ("Green Smoothie", 5.5, "vegan", "spinach, banana, apple, ginger", 0, "drinks"),
            ("Vegan Brownie", 4.5, "vegan", "dark chocolate, oat milk, walnuts", 0, "dessert"),
        ),
        ("Green", "Plant", "Leafy", "Sprout", "Happy Cow", "Root", "Kale &", "Veggie"),
        ("Kitchen", "Bowl", "Garden", "Eatery", "Café"),
    ),
    Cuisine(
        "middle-eastern",
        0.07,
        ("Chicken", "Lamb", "Beef", "Falafel", "Halloumi"),
        _dishes(
            ("Shawarma Wrap", 8.5, "protein", "flatbread, garlic sauce, pickles, tomato", 1),
            ("Shawarma Plate", 12.5, "protein", "rice, salad, hummus, garlic sauce", 1),
            ("Kebab", 8.0, "protein", "bread, salad, red cabbage, yoghurt sauce", 1),
            ("Falafel Plate", 10.5, "vegan", "falafel, hummus, tabbouleh, pita"),
            ("Hummus Plate", 7.5, "vegan", "chickpeas, tahini, lemon, olive oil, pita"),
            ("Mixed Grill", 16.5, "meat", "lamb kofta, chicken skewer, rice, grilled vegetables", 1),
            ("Tabbouleh", 6.0, "vegan", "bulgur, parsley, mint, tomato, lemon"),
            ("Baklava", 5.0, "vegetarian", "filo pastry, pistachio, honey syrup", 0, "dessert"),
            ("Ayran", 2.5, "vegetarian", "yoghurt drink, salt", 0, "drinks"),
        ),
        ("Beirut", "Damascus", "Sultan", "Habibi", "Cedar", "Aleppo", "Oasis", "Levant"),
        ("Grill", "Kitchen", "Kebab House", "Shawarma", "Mezze"),
        halal_share=0.8,
    ),
    Cuisine(
        "korean",
        0.05,
        ("Chicken", "Beef", "Pork", "Tofu", "Vegetable"),
        _dishes(
            ("Bibimbap", 12.5, "protein", "rice, namul vegetables, gochujang, fried egg", 1),
            ("Korean Fried Chicken", 12.0, "meat", "double-fried chicken, yangnyeom glaze, sesame", 2),
            ("Beef Bulgogi", 14.0, "meat", "marinated beef, onion, rice, kimchi"),
            ("Kimchi Fried Rice", 11.0, "protein", "kimchi, rice, spring onion, fried egg", 2),
            ("Tteokbokki", 9.5, "vegetarian", "rice cakes, gochujang, fish-free broth, egg", 3),
            ("Japchae", 11.5, "protein", "glass noodles, spinach, carrot, sesame oil"),
            ("Kimchi", 4.0, "vegan", "fermented napa cabbage, chilli", 2),
            ("Bingsu", 7.0, "vegetarian", "shaved milk ice, red beans, mochi", 0, "dessert"),
            ("Yuzu Tea", 3.5, "vegan", "yuzu, honey-free syrup", 0, "drinks"),
        ),
        ("Seoul", "Kimchi", "Gangnam", "Busan", "K-Town", "Hanok", "Bap", "Oppa"),
        ("Kitchen", "BBQ", "Chicken", "House", "Table"),
    ),
    Cuisine(
        "bakery",
        0.05,
        ("Chicken", "Mozzarella", "Avocado"),
        _dishes(
            ("Butter Croissant", 2.5, "vegetarian", "laminated dough, butter"),
            ("Pain au Chocolat", 2.8, "vegetarian", "laminated dough, dark chocolate"),
            ("Cinnamon Roll", 3.5, "vegetarian", "brioche dough, cinnamon, icing"),
            ("Sourdough Sandwich", 7.5, "protein", "sourdough, rocket, tomato, pesto"),
            ("Quiche Lorraine", 6.0, "meat", "shortcrust, bacon, egg, gruyère"),
            ("Spinach Feta Quiche", 6.0, "vegetarian", "shortcrust, spinach, feta, egg"),
            ("Cheesecake Slice", 4.5, "vegetarian", "cream cheese, biscuit base", 0, "dessert"),
            ("Carrot Cake", 4.5, "vegetarian", "carrot, walnuts, cream cheese frosting", 0, "dessert"),
            ("Cappuccino", 3.5, "vegetarian", "espresso, steamed milk", 0, "drinks"),
            ("Oat Latte", 4.0, "vegan", "espresso, oat milk", 0, "drinks"),
        ),
        ("Golden Crust", "Flour &", "Morning", "Le Petit", "Sugar", "Rise", "Crumb", "Baker's"),
        ("Bakery", "Boulangerie", "Café", "Patisserie", "Bakehouse"),
    ),
    Cuisine(
        "vietnamese",
        0.04,
        ("Chicken", "Beef", "Prawn", "Tofu"),
        _dishes(
            ("Pho", 12.0, "protein", "rice noodles, star anise broth, herbs, lime", 1),
            ("Banh Mi", 8.5, "protein", "baguette, pickled carrot, coriander, pâté-free mayo", 1),
            ("Summer Rolls", 7.0, "protein", "rice paper, vermicelli, mint, peanut dip"),
            ("Bun Bo Hue", 12.5, "meat", "beef, lemongrass broth, thick noodles", 3),
            ("Lemongrass Rice Bowl", 11.5, "protein", "jasmine rice, lemongrass, pickles, nuoc cham", 1),
            ("Vietnamese Iced Coffee", 4.0, "vegetarian", "robusta, condensed milk", 0, "drinks"),
        ),
        ("Saigon", "Hanoi", "Pho", "Lotus", "Little", "Mekong", "Hoi An", "Bamboo"),
        ("Kitchen", "Street Food", "House", "Bistro", "Corner"),
    ),
    Cuisine(
        "greek",
        0.04,
        ("Chicken", "Pork", "Lamb", "Halloumi"),
        _dishes(
            ("Gyros Plate", 12.5, "protein", "pita, tzatziki, fries, tomato, onion"),
            ("Souvlaki Skewers", 12.0, "protein", "grilled skewers, lemon, oregano, rice"),
            ("Moussaka", 13.0, "meat", "aubergine, minced lamb, béchamel"),
            ("Greek Salad", 8.5, "vegetarian", "feta, tomato, cucumber, olives, red onion"),
            ("Spanakopita", 7.0, "vegetarian", "filo, spinach, feta"),
            ("Tzatziki & Pita", 5.0, "vegetarian", "yoghurt, cucumber, garlic, pita"),
            ("Loukoumades", 5.0, "vegetarian", "honey dumplings, cinnamon, walnuts", 0, "dessert"),
        ),
        ("Athena", "Olympia", "Santorini", "Mykonos", "Zorba's", "Kreta", "Delphi", "Ionian"),
        ("Taverna", "Grill", "Kitchen", "Gyros", "Meze"),
    ),
)

# Spice words in titles and descriptions, by spice level.
SPICE_WORDS = ("mild", "medium", "hot", "very hot")
DISH_MODIFIERS = ("Classic", "House", "Homestyle", "Signature", "Crispy", "Smoky", "Grilled", "Chef's")


@dataclass(frozen=True)
class Product:
    """A grocery product template.

    Attributes:
        name: title core ("Whole Milk").
        price: typical price in EUR of the first size.
        sizes: size labels with price multipliers.
        vegan: contains no animal products.
        meat: meat or fish.
        variants: optional title prefixes ("Lactose-free").
    """

    name: str
    price: float
    sizes: tuple[tuple[str, float], ...]
    vegan: bool = True
    meat: bool = False
    variants: tuple[str, ...] = ()


def _p(name: str, price: float, sizes: str, diet: str = "vegan", variants: str = "") -> Product:
    """Compact product row: ``sizes`` like "1L:1,2L:1.8"; ``diet`` vegan|vegetarian|meat."""
    parsed = tuple((label, float(mult)) for label, mult in (s.split(":") for s in sizes.split(",")))
    return Product(name, price, parsed, diet == "vegan", diet == "meat", tuple(v for v in variants.split("|") if v))


PRODUCTS: dict[str, tuple[Product, ...]] = {
    "produce": (
        _p("Bananas", 1.49, "1kg:1"),
        _p("Apples", 2.29, "1kg:1,2kg:1.8", variants="Gala|Braeburn|Pink Lady"),
        _p("Avocados", 2.49, "x2:1,x4:1.8"),
        _p("Cherry Tomatoes", 1.99, "250g:1,500g:1.8"),
        _p("Carrots", 0.99, "1kg:1"),
        _p("Baby Spinach", 1.79, "150g:1,300g:1.8"),
        _p("Red Onions", 1.29, "1kg:1"),
        _p("Lemons", 1.49, "x4:1"),
        _p("Potatoes", 2.49, "2kg:1,5kg:2.2", variants="Waxy|Floury"),
        _p("Blueberries", 2.99, "125g:1,300g:2.2"),
        _p("Broccoli", 1.29, "500g:1"),
        _p("Bell Peppers", 2.19, "x3:1", variants="Mixed|Red"),
        _p("Strawberries", 2.99, "250g:1,500g:1.9"),
    ),
    "dairy": (
        _p("Whole Milk", 1.19, "1L:1,2L:1.8", "vegetarian", "Fresh|Lactose-free"),
        _p("Semi-skimmed Milk", 1.09, "1L:1", "vegetarian"),
        _p("Oat Milk", 1.99, "1L:1", variants="Barista|Unsweetened"),
        _p("Greek Yogurt", 2.19, "500g:1,150g:0.45", "vegetarian", "Natural|Honey"),
        _p("Cheddar Cheese", 2.79, "200g:1,400g:1.8", "vegetarian", "Mature|Mild"),
        _p("Butter", 2.29, "250g:1", "vegetarian", "Salted|Unsalted"),
        _p("Free-range Eggs", 2.49, "x6:1,x12:1.9", "vegetarian"),
        _p("Mozzarella", 1.29, "125g:1", "vegetarian", "Buffalo"),
        _p("Feta Cheese", 2.49, "200g:1", "vegetarian"),
        _p("Skyr", 1.59, "450g:1", "vegetarian", "Vanilla|Natural"),
        _p("Soy Yogurt", 1.89, "500g:1", variants="Plain|Strawberry"),
    ),
    "bakery": (
        _p("Sourdough Bread", 3.49, "500g:1,1kg:1.8", "vegan"),
        _p("Whole Wheat Toast", 1.79, "500g:1"),
        _p("Croissants", 2.49, "x4:1", "vegetarian"),
        _p("Bagels", 2.29, "x4:1", variants="Sesame|Plain"),
        _p("Rye Bread", 2.69, "750g:1"),
        _p("Pretzel Rolls", 1.99, "x4:1"),
        _p("Tortilla Wraps", 1.89, "x8:1", variants="Wholegrain|Plain"),
        _p("Blueberry Muffins", 2.99, "x4:1", "vegetarian"),
    ),
    "meat": (
        _p("Chicken Breast", 5.49, "400g:1,1kg:2.3", "meat", "Free-range"),
        _p("Beef Mince", 4.99, "500g:1", "meat", "Lean|Organic"),
        _p("Pork Sausages", 3.99, "x6:1", "meat", "Cumberland|Bratwurst"),
        _p("Sliced Ham", 2.49, "150g:1", "meat", "Smoked|Honey"),
        _p("Lamb Chops", 8.99, "400g:1", "meat"),
        _p("Ribeye Steak", 11.99, "300g:1", "meat", "Dry-aged"),
        _p("Chicken Thighs", 4.49, "600g:1", "meat"),
        _p("Salami", 2.29, "100g:1", "meat", "Milano|Spicy"),
        _p("Bacon Rashers", 2.99, "200g:1", "meat", "Smoked|Streaky"),
    ),
    "seafood": (
        _p("Salmon Fillets", 6.99, "250g:1,500g:1.9", "meat", "Wild|Smoked"),
        _p("King Prawns", 6.49, "200g:1", "meat", "Cooked|Raw"),
        _p("Tuna Chunks", 1.79, "160g:1,3x160g:2.6", "meat"),
        _p("Cod Fillets", 5.99, "400g:1", "meat"),
    ),
    "frozen": (
        _p("Frozen Peas", 1.49, "1kg:1"),
        _p("Margherita Pizza", 2.99, "400g:1", "vegetarian", "Stone-baked"),
        _p("Vanilla Ice Cream", 3.49, "500ml:1,1L:1.7", "vegetarian", "Madagascan"),
        _p("Fish Fingers", 2.99, "x10:1", "meat"),
        _p("Mixed Berries", 3.29, "500g:1"),
        _p("Veggie Dumplings", 3.99, "500g:1"),
        _p("Oven Chips", 2.29, "1kg:1", variants="Crinkle Cut|Straight Cut"),
        _p("Spinach Portions", 1.69, "450g:1"),
    ),
    "snacks": (
        _p("Sea Salt Crisps", 1.79, "150g:1", variants="Kettle|Thin"),
        _p("Dark Chocolate 70%", 2.29, "100g:1"),
        _p("Milk Chocolate Bar", 1.49, "100g:1", "vegetarian", "Hazelnut|Caramel"),
        _p("Salted Peanuts", 1.99, "200g:1"),
        _p("Granola Bars", 2.79, "x6:1", "vegetarian", "Oat|Chocolate Chip"),
        _p("Tortilla Chips", 1.89, "200g:1", variants="Lightly Salted|Chilli"),
        _p("Gummy Bears", 1.29, "200g:1", "vegetarian"),
        _p("Rice Cakes", 1.19, "130g:1", variants="Sea Salt|Dark Chocolate"),
        _p("Mixed Nuts", 3.99, "200g:1", variants="Roasted|Unsalted"),
    ),
    "beverages": (
        _p("Sparkling Water", 0.79, "1.5L:1,6x1.5L:5", variants="Lemon|Classic"),
        _p("Orange Juice", 2.49, "1L:1", variants="Not From Concentrate|With Bits"),
        _p("Cola", 1.49, "1.5L:1,6x0.33L:2.4", variants="Zero Sugar|Classic"),
        _p("Ground Coffee", 5.49, "500g:1", variants="Espresso|Medium Roast"),
        _p("Green Tea", 2.29, "x20:1", variants="Jasmine|Sencha"),
        _p("Craft Lager", 1.39, "0.5L:1,6x0.5L:5.4"),
        _p("Red Wine", 6.99, "0.75L:1", variants="Merlot|Rioja|Primitivo"),
        _p("Kombucha", 2.49, "330ml:1", variants="Ginger|Raspberry"),
        _p("Apple Juice", 1.99, "1L:1", variants="Cloudy|Clear"),
    ),
    "pantry": (
        _p("Spaghetti", 1.29, "500g:1", variants="Whole Wheat|Durum"),
        _p("Basmati Rice", 2.49, "1kg:1"),
        _p("Chopped Tomatoes", 0.89, "400g:1,4x400g:3.4"),
        _p("Extra Virgin Olive Oil", 6.99, "500ml:1,1L:1.8"),
        _p("Peanut Butter", 2.99, "350g:1", variants="Crunchy|Smooth"),
        _p("Rolled Oats", 1.49, "500g:1,1kg:1.8"),
        _p("Honey", 4.49, "250g:1", "vegetarian", "Wildflower"),
        _p("Red Lentils", 1.99, "500g:1"),
        _p("Chickpeas", 0.99, "400g:1"),
        _p("Pesto Genovese", 2.79, "190g:1", "vegetarian"),
        _p("Muesli", 3.49, "750g:1", variants="Fruit & Nut|Swiss"),
    ),
    "household": (
        _p("Dish Soap", 1.99, "500ml:1", variants="Lemon|Sensitive"),
        _p("Toilet Paper", 3.99, "x8:1,x16:1.9", variants="3-ply|Recycled"),
        _p("Laundry Detergent", 7.99, "1.5L:1", variants="Colour|Non-bio"),
        _p("Kitchen Towels", 2.49, "x4:1"),
        _p("Bin Bags", 2.29, "x20:1"),
        _p("Sponges", 1.49, "x5:1"),
        _p("Hand Soap", 1.79, "250ml:1", variants="Aloe|Lavender"),
    ),
    "international": (
        _p("Jasmine Rice", 3.49, "1kg:1,5kg:4.2"),
        _p("Soy Sauce", 2.49, "500ml:1", variants="Light|Dark"),
        _p("Kimchi", 3.99, "300g:1"),
        _p("Instant Ramen", 3.49, "x5:1", variants="Spicy|Shoyu"),
        _p("Rice Noodles", 1.99, "400g:1"),
        _p("Coconut Milk", 1.49, "400ml:1"),
        _p("Gochujang Paste", 4.49, "500g:1"),
        _p("Sriracha Sauce", 3.29, "435ml:1"),
        _p("Miso Paste", 3.99, "300g:1", variants="White|Red"),
        _p("Frozen Gyoza", 4.49, "600g:1", "meat"),
        _p("Fish Sauce", 2.79, "200ml:1", "meat"),
        _p("Firm Tofu", 1.99, "400g:1"),
    ),
}


# Brands that prefix some product titles ("Alpine Whole Milk 1L").
BRANDS = ("Alpine", "Golden Acre", "Hofgut", "Green Valley", "Sunrise", "Nordic Farm", "Bella Terra", "Daily")


@dataclass(frozen=True)
class StoreType:
    """A grocery-store category: what it sells and what it is called."""

    name: str
    weight: float
    mix: dict[str, float]  # product category -> share of the store's items
    price_level: float
    organic_share: float
    name_heads: tuple[str, ...]
    name_tails: tuple[str, ...]


STORE_TYPES: tuple[StoreType, ...] = (
    StoreType(
        "supermarket",
        0.40,
        {
            "produce": 0.14,
            "dairy": 0.13,
            "bakery": 0.08,
            "meat": 0.09,
            "seafood": 0.04,
            "frozen": 0.09,
            "snacks": 0.10,
            "beverages": 0.11,
            "pantry": 0.12,
            "household": 0.07,
            "international": 0.03,
        },
        1.0,
        0.1,
        ("FreshMart", "DailyBasket", "CityGrocer", "ValueMart", "MarketHall", "GoodBuy", "Kiez"),
        ("Express", "Supermarket", "Market", "Foods", "Superstore"),
    ),
    StoreType(
        "organic",
        0.15,
        {"produce": 0.28, "dairy": 0.2, "bakery": 0.14, "pantry": 0.2, "beverages": 0.1, "snacks": 0.08},
        1.3,
        0.85,
        ("Green Leaf", "Bio Garden", "Good Earth", "Nature's Pantry", "Wholesome", "Sunflower"),
        ("Organic Market", "Bio Store", "Organics", "Whole Foods"),
    ),
    StoreType(
        "convenience",
        0.18,
        {"snacks": 0.3, "beverages": 0.35, "dairy": 0.1, "frozen": 0.1, "household": 0.1, "bakery": 0.05},
        1.25,
        0.0,
        ("Corner", "QuickStop", "Späti", "Night Owl", "Handy", "Minute"),
        ("Shop", "Mart", "24/7", "Convenience", "Kiosk"),
    ),
    StoreType(
        "butcher",
        0.08,
        {"meat": 0.78, "seafood": 0.12, "pantry": 0.1},
        1.2,
        0.2,
        ("Müller's", "Schmidt & Sons", "Prime", "Weber's", "Old Town", "Farmhouse"),
        ("Butchery", "Meat Co.", "Butcher", "Cuts"),
    ),
    StoreType(
        "asian-grocery",
        0.11,
        {"international": 0.55, "produce": 0.12, "frozen": 0.15, "snacks": 0.1, "beverages": 0.08},
        1.05,
        0.0,
        ("Golden Lotus", "Asia", "Seoul", "Tokyo", "Mekong", "Bamboo"),
        ("Asian Market", "Grocery", "Food Store", "Supermarket"),
    ),
    StoreType(
        "greengrocer",
        0.08,
        {"produce": 0.9, "pantry": 0.1},
        1.1,
        0.3,
        ("Sunny Fields", "Orchard", "Market Garden", "Fresh Picks", "Harvest"),
        ("Greengrocer", "Fruit & Veg", "Produce"),
    ),
)

# Item categories (= taste dimensions) per domain: cuisines plus courses that cut across them.
RESTAURANT_CATEGORIES: tuple[str, ...] = (*(c.name for c in CUISINES), "sushi", "dessert", "drinks")
GROCERY_CATEGORIES: tuple[str, ...] = tuple(PRODUCTS)
