"""The 20 JSON schemas of the structured-output acceptance run (`tools.bench.structured`),
as pydantic models the `openai` SDK's `.parse()` takes: nested objects, arrays, enums,
bounded numbers, optional fields and `anyOf` unions. Free-text strings carry a maxLength,
as a schema for a small model's answer would: the grammar then bounds every answer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

Name = Annotated[str, Field(min_length=1, max_length=40)]
Short = Annotated[str, Field(max_length=80)]


class Person(BaseModel):
    name: Name
    age: Annotated[int, Field(ge=0, le=130)]


class Address(BaseModel):
    street: Name
    city: Name
    postcode: Annotated[str, Field(pattern=r"^[0-9]{5}$")]
    country: Literal["France", "Germany", "Italy", "Spain"]


class Customer(BaseModel):  # nested
    person: Person
    address: Address


class Item(BaseModel):
    name: Name
    quantity: Annotated[int, Field(ge=1, le=100)]
    price: Annotated[float, Field(ge=0, le=10000)]


class Order(BaseModel):  # an array of objects
    order_id: Annotated[int, Field(ge=1)]
    items: Annotated[list[Item], Field(min_length=1, max_length=4)]


class Weather(BaseModel):
    city: Name
    temperature_c: Annotated[float, Field(ge=-90, le=60)]
    condition: Literal["sunny", "cloudy", "rain", "snow"]


class Book(BaseModel):
    title: Name
    author: Name
    year: Annotated[int, Field(ge=1450, le=2030)]
    genres: Annotated[list[Literal["fiction", "history", "science", "poetry"]], Field(max_length=3)]


class Contact(BaseModel):  # optional fields
    name: Name
    email: Name | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9]{6,14}$")] | None = None


class Circle(BaseModel):
    kind: Literal["circle"]
    radius: Annotated[float, Field(gt=0, le=1000)]


class Rectangle(BaseModel):
    kind: Literal["rectangle"]
    width: Annotated[float, Field(gt=0, le=1000)]
    height: Annotated[float, Field(gt=0, le=1000)]


class Drawing(BaseModel):  # anyOf of objects
    title: Name
    shapes: Annotated[list[Circle | Rectangle], Field(min_length=1, max_length=3)]


class Sentiment(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    confidence: Annotated[float, Field(ge=0, le=1)]


class Event(BaseModel):
    name: Name
    date: Annotated[str, Field(pattern=r"^20[0-9]{2}-[01][0-9]-[0-3][0-9]$")]
    attendees: Annotated[int, Field(ge=0, le=100000)]
    online: bool


class Employee(BaseModel):
    name: Name
    role: Literal["engineer", "manager", "designer", "sales"]


class Department(BaseModel):
    name: Name
    employees: Annotated[list[Employee], Field(min_length=1, max_length=3)]


class Company(BaseModel):  # three levels deep
    name: Name
    departments: Annotated[list[Department], Field(min_length=1, max_length=2)]


class Recipe(BaseModel):
    title: Name
    ingredients: Annotated[list[Name], Field(min_length=1, max_length=6)]
    minutes: Annotated[int, Field(ge=1, le=600)]
    vegetarian: bool


class Coordinates(BaseModel):
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]


class MathAnswer(BaseModel):
    steps: Annotated[list[Short], Field(max_length=3)]
    answer: int


class Product(BaseModel):
    name: Name
    price: Annotated[float, Field(ge=0, le=100000)]
    currency: Literal["EUR", "USD", "GBP"]
    in_stock: bool
    tags: Annotated[list[Name], Field(max_length=4)]


class Flight(BaseModel):
    origin: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    destination: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    duration_minutes: Annotated[int, Field(ge=20, le=1200)]
    stops: Annotated[int, Field(ge=0, le=3)]


class Classification(BaseModel):
    category: Literal["billing", "technical", "account", "other"]
    urgent: bool
    keywords: Annotated[list[Name], Field(max_length=4)]


class Grid(BaseModel):  # arrays of arrays
    rows: Annotated[
        list[Annotated[list[Annotated[int, Field(ge=0, le=9)]], Field(min_length=3, max_length=3)]],
        Field(min_length=3, max_length=3),
    ]


class Measurement(BaseModel):  # anyOf of primitives, and an optional
    quantity: Name
    value: int | float | bool
    unit: Name | None = None


class Translation(BaseModel):
    source_language: Literal["en", "fr", "de", "es"]
    target_language: Literal["en", "fr", "de", "es"]
    text: Short


# (model, prompt): each prompt asks for what its schema holds.
CASES: list[tuple[type[BaseModel], str]] = [
    (Person, "Describe a famous scientist: name and age at death."),
    (Address, "Give the address of a museum in Paris."),
    (Customer, "Invent a customer: who they are and where they live."),
    (Order, "Write an order of two groceries with quantities and prices."),
    (Weather, "Describe today's weather in Oslo."),
    (Book, "Describe a classic novel."),
    (Contact, "Give the contact details of a fictional plumber."),
    (Drawing, "Describe a drawing made of a circle and a rectangle."),
    (Sentiment, "Classify the sentiment of: 'I love this phone, the battery lasts days.'"),
    (Event, "Describe a tech conference held in 2025."),
    (Company, "Describe a small company with its departments and employees."),
    (Recipe, "Give a simple pancake recipe."),
    (Coordinates, "Give the coordinates of Rome."),
    (MathAnswer, "What is 12 times 7? Show your steps."),
    (Product, "Describe a laptop for sale."),
    (Flight, "Describe a flight from Paris (CDG) to New York (JFK)."),
    (Classification, "Classify this ticket: 'I was charged twice for my subscription.'"),
    (Grid, "Fill a 3x3 grid with digits."),
    (Measurement, "Report the boiling point of water."),
    (Translation, "Translate 'good morning' from English to French."),
]
SYSTEM = "Answer with JSON only."
