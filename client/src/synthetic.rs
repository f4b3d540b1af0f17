//! A deterministic generator of a synthetic register of children with a Child Protection Plan,
//! for `cpreg demo`, tests and benchmarks.
//!
//! Every person, address and telephone number here is fictional:
//! - NHS numbers are drawn from the 900 000 000x range, which is not issued to patients, and
//!   carry a valid modulus-11 check digit;
//! - telephone numbers are in Ofcom's ranges reserved for drama (020 7946 0xxx, 07700 900xxx);
//! - street names are made up, in real postcode districts of one London borough.
//!
//! The same seed and the same `today` always give the same rows, whatever the batch sizes
//! passed to [`Generator::children`].

use std::collections::VecDeque;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use cpreg_proto::ident;

/// One CSV row's fields, strings as they appear in the file ("" = unknown).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyntheticChild {
    pub record_id: String,
    pub given_names: String,
    pub surname: String,
    pub other_names: Vec<String>,
    pub date_of_birth: String,
    pub gender: String,
    pub nhs_number: String,
    pub address: String,
    pub postcode: String,
    pub categories: Vec<String>,
    pub plan_start_date: String,
    pub lead_social_worker: String,
    pub lead_social_worker_phone: String,
    pub next_review_date: String,
    pub lead_social_worker_email: String,
    pub expected_delivery_date: String,
    pub mother_given_names: String,
    pub mother_surname: String,
    pub mother_date_of_birth: String,
    pub mother_nhs_number: String,
}

/// The CSV header line's column names, in the order `write_csv` writes them: the columns the
/// primary's import recognises.
pub const CSV_COLUMNS: [&str; 20] = cpreg_primary::import::COLUMNS;

/// Writes a header and the rows. `other_names` and `category` are joined with `;`.
pub fn write_csv<W: std::io::Write>(out: W, children: &[SyntheticChild]) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_COLUMNS)?;
    let mut other_names = String::new();
    let mut categories = String::new();
    for c in children {
        join_into(&mut other_names, &c.other_names);
        join_into(&mut categories, &c.categories);
        writer.write_record([
            c.record_id.as_str(),
            &c.given_names,
            &c.surname,
            &other_names,
            &c.date_of_birth,
            &c.gender,
            &c.nhs_number,
            &c.address,
            &c.postcode,
            &categories,
            &c.plan_start_date,
            &c.lead_social_worker,
            &c.lead_social_worker_phone,
            &c.next_review_date,
            &c.lead_social_worker_email,
            &c.expected_delivery_date,
            &c.mother_given_names,
            &c.mother_surname,
            &c.mother_date_of_birth,
            &c.mother_nhs_number,
        ])?;
    }
    writer.flush()
}

/// "Sam O'Neill" -> "sam.oneill@social-care.example": a work address on a reserved domain.
fn work_email(name: &str) -> String {
    format!(
        "{}@social-care.example",
        cpreg_proto::names::tokens(name).join(".")
    )
}

fn join_into(buf: &mut String, items: &[String]) {
    buf.clear();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.push(';');
        }
        buf.push_str(item);
    }
}

// ---------------------------------------------------------------------------------------------
// Name tables. Grouped by the communities a London borough's register reflects; a group's
// weight is its share of households (out of 1000).

struct Group {
    weight: u32,
    male: &'static [&'static str],
    female: &'static [&'static str],
    surnames: &'static [&'static str],
    /// Whether middle names are often English ones ("Oliver James", "Precious Grace").
    english_middle: bool,
}

const GROUPS: [Group; 12] = [
    // White British, Welsh and Scottish.
    Group {
        weight: 370,
        male: &[
            "Oliver",
            "George",
            "Harry",
            "Jack",
            "Noah",
            "Leo",
            "Charlie",
            "Freddie",
            "Alfie",
            "Thomas",
            "Archie",
            "Jacob",
            "Oscar",
            "Ethan",
            "Mason",
            "Riley",
            "Tyler",
            "Callum",
            "Kieran",
            "Dylan",
            "Harrison",
            "Lewis",
            "Rhys",
            "Dafydd",
            "Tommy",
            "Reggie",
            "Ronnie",
            "Teddy",
            "Albie",
            "Logan",
            "Jamie",
            "Alexander",
            "William",
            "Samuel",
            "Joseph",
            "Daniel",
            "Frederick",
            "Alfred",
            "Harley",
            "Bobby",
            "Finley",
            "Jaxon",
            "Kayden",
            "Brandon",
            "Owen",
            "Euan",
        ],
        female: &[
            "Olivia",
            "Amelia",
            "Isla",
            "Ava",
            "Mia",
            "Ivy",
            "Lily",
            "Freya",
            "Poppy",
            "Sophie",
            "Grace",
            "Evie",
            "Ella",
            "Ruby",
            "Millie",
            "Chloe",
            "Zoë",
            "Siân",
            "Megan",
            "Carys",
            "Ffion",
            "Jessica",
            "Holly",
            "Lacey",
            "Skye",
            "Mary Ann",
            "Lily-Mae",
            "Ellie-May",
            "Tia-Rose",
            "Elizabeth",
            "Charlotte",
            "Isabella",
            "Rebecca",
            "Katherine",
            "Victoria",
            "Harper",
            "Willow",
            "Darcie",
            "Summer",
            "Paige",
            "Courtney",
            "Eilidh",
        ],
        surnames: &[
            "Smith",
            "Jones",
            "Taylor",
            "Brown",
            "Williams",
            "Wilson",
            "Johnson",
            "Davies",
            "Robinson",
            "Wright",
            "Thompson",
            "Evans",
            "Walker",
            "White",
            "Roberts",
            "Green",
            "Hall",
            "Wood",
            "Jackson",
            "Clarke",
            "Hughes",
            "Edwards",
            "Turner",
            "Cooper",
            "Harris",
            "Baker",
            "Price",
            "Bennett",
            "Lloyd",
            "Ward",
            "Murray",
            "Fletcher",
            "Barnes",
            "Chapman",
            "Marsh",
            "Pearce",
            "Holmes",
            "Stewart",
            "MacDonald",
            "Morgan",
            "Griffiths",
            "Ashworth",
            "Hargreaves",
            "Whitfield",
            "Pritchard",
        ],
        english_middle: true,
    },
    // Irish and Irish Traveller.
    Group {
        weight: 40,
        male: &[
            "Seán", "Ciarán", "Oisín", "Conor", "Patrick", "Tadhg", "Liam", "Darragh", "Cian",
            "Fionn", "Michael", "Eoin", "Padraig", "John Joe",
        ],
        female: &[
            "Niamh",
            "Aoife",
            "Róisín",
            "Saoirse",
            "Caoimhe",
            "Siobhán",
            "Mary Kate",
            "Ciara",
            "Orla",
            "Éabha",
            "Bridget",
            "Clodagh",
        ],
        surnames: &[
            "O'Connor",
            "O'Brien",
            "O'Neill",
            "O'Sullivan",
            "Murphy",
            "Kelly",
            "Byrne",
            "Ryan",
            "McCarthy",
            "Doherty",
            "Gallagher",
            "Walsh",
            "McDonagh",
            "Quinn",
            "Ó Briain",
        ],
        english_middle: true,
    },
    // Black Caribbean.
    Group {
        weight: 80,
        male: &[
            "Jayden",
            "Tyrese",
            "Kai",
            "Malachi",
            "Jermaine",
            "Dante",
            "Amari",
            "Isaiah",
            "Elijah",
            "Josiah",
            "Marcus",
            "Kymani",
            "Xavier",
            "Andre",
            "Reuben",
            "Nathaniel",
            "Jahmai",
        ],
        female: &[
            "Shanice",
            "Aaliyah",
            "Kyra",
            "Tianna",
            "Nia",
            "Imani",
            "Jada",
            "Keisha",
            "Naomi",
            "Destiny",
            "Renée",
            "Mya",
            "Kiara",
            "Leah",
            "Zuri",
            "Tiana-Marie",
        ],
        surnames: &[
            "Campbell", "Clarke", "Williams", "Brown", "Thompson", "Francis", "Grant", "Robinson",
            "Bailey", "Reid", "Henry", "Joseph", "Forbes", "Gayle", "McKenzie", "Samuels",
            "Powell", "Richards", "Lewis", "Spencer", "Beckford", "Gordon",
        ],
        english_middle: true,
    },
    // Black African: Nigerian and Ghanaian.
    Group {
        weight: 100,
        male: &[
            "Oluwaseun",
            "Chidi",
            "Tobi",
            "Emeka",
            "Chukwuemeka",
            "Kwame",
            "Kofi",
            "Kwabena",
            "Femi",
            "Ayodele",
            "David",
            "Daniel",
            "Samuel",
            "Joshua",
            "Emmanuel",
            "Ifeanyi",
            "Tunde",
            "Oluwatobiloba",
            "Temiloluwa",
        ],
        female: &[
            "Chiamaka",
            "Adaeze",
            "Ifeoluwa",
            "Precious",
            "Blessing",
            "Favour",
            "Abena",
            "Ama",
            "Akosua",
            "Efua",
            "Ngozi",
            "Funmilayo",
            "Oluwadamilola",
            "Adwoa",
            "Esther",
            "Deborah",
            "Zainab",
            "Chioma",
            "Amarachi",
            "Mercy",
        ],
        surnames: &[
            "Adeyemi",
            "Okafor",
            "Okonkwo",
            "Adebayo",
            "Eze",
            "Balogun",
            "Nwosu",
            "Obi",
            "Oladipo",
            "Mensah",
            "Owusu",
            "Asante",
            "Boateng",
            "Osei",
            "Appiah",
            "Adewale",
            "Okoro",
            "Oyelaran",
            "Afolabi",
            "Danso",
            "Agyeman",
            "Ogunleye",
            "Nwachukwu",
            "Ibekwe",
        ],
        english_middle: true,
    },
    // Black African: Somali, Eritrean and Ethiopian.
    Group {
        weight: 30,
        male: &[
            "Abdirahman",
            "Mahad",
            "Abdullahi",
            "Liban",
            "Yonas",
            "Dawit",
            "Mohamed",
            "Hassan",
            "Bereket",
            "Abdi",
            "Samatar",
            "Kaleb",
        ],
        female: &[
            "Hodan", "Ayaan", "Sagal", "Khadra", "Hibo", "Ifrah", "Ruth", "Selam", "Hanna",
            "Mahlet", "Amina", "Sumaya",
        ],
        surnames: &[
            "Mohamed",
            "Abdi",
            "Hassan",
            "Farah",
            "Ali",
            "Hussein",
            "Omar",
            "Warsame",
            "Jama",
            "Ahmed",
            "Tesfaye",
            "Haile",
            "Gebremedhin",
            "Bekele",
            "Yusuf",
            "Osman",
        ],
        english_middle: false,
    },
    // Pakistani and Bangladeshi.
    Group {
        weight: 100,
        male: &[
            "Muhammad", "Mohammed", "Ibrahim", "Yusuf", "Zayn", "Hamza", "Ayaan", "Rayyan", "Ali",
            "Imran", "Tahmid", "Rahim", "Zakariya", "Ismail", "Idris", "Mikail", "Arham", "Sami",
            "Adam", "Musa",
        ],
        female: &[
            "Aisha", "Fatima", "Maryam", "Zara", "Hafsa", "Inaaya", "Anaya", "Ayesha", "Noor",
            "Safiya", "Khadija", "Sumaiya", "Nusrat", "Tasnim", "Sadia", "Farhana", "Mariyah",
            "Aleena", "Eshal", "Hania",
        ],
        surnames: &[
            "Khan",
            "Ahmed",
            "Hussain",
            "Ali",
            "Rahman",
            "Akhtar",
            "Iqbal",
            "Mahmood",
            "Chowdhury",
            "Uddin",
            "Islam",
            "Miah",
            "Shah",
            "Malik",
            "Rashid",
            "Hoque",
            "Siddiqui",
            "Qureshi",
            "Butt",
            "Raja",
            "Anwar",
            "Aziz",
        ],
        english_middle: false,
    },
    // Indian, Sri Lankan Tamil and Goan.
    Group {
        weight: 70,
        male: &[
            "Arjun",
            "Rohan",
            "Aarav",
            "Vihaan",
            "Dev",
            "Krish",
            "Gurpreet",
            "Jaspreet",
            "Harjeet",
            "Tharun",
            "Kavin",
            "Thushanth",
            "Aryan",
            "Neel",
            "Sai",
            "Joel",
            "Ravi",
            "Sukhdeep",
        ],
        female: &[
            "Priya", "Ananya", "Diya", "Saanvi", "Isha", "Anika", "Simran", "Manpreet", "Harleen",
            "Nila", "Abinaya", "Kavya", "Riya", "Aditi", "Tanvi", "Sharanya", "Navneet",
        ],
        surnames: &[
            "Patel",
            "Shah",
            "Singh",
            "Sharma",
            "Gupta",
            "Kumar",
            "Pillai",
            "Sivakumaran",
            "Thevarajah",
            "Jeyakumar",
            "D'Souza",
            "Fernandes",
            "Pereira",
            "Gill",
            "Sandhu",
            "Dhillon",
            "Mistry",
            "Parmar",
            "Joshi",
            "Varma",
            "Chauhan",
            "Sidhu",
            "Bains",
        ],
        english_middle: false,
    },
    // Polish.
    Group {
        weight: 55,
        male: &[
            "Łukasz",
            "Jakub",
            "Paweł",
            "Michał",
            "Wojciech",
            "Bartłomiej",
            "Szymon",
            "Kacper",
            "Filip",
            "Aleksander",
            "Mateusz",
            "Dawid",
            "Antoni",
            "Franciszek",
        ],
        female: &[
            "Zuzanna",
            "Małgorzata",
            "Aleksandra",
            "Julia",
            "Maja",
            "Hanna",
            "Natalia",
            "Wiktoria",
            "Oliwia",
            "Karolina",
            "Agnieszka",
            "Zofia",
            "Gabriela",
        ],
        // Masculine forms: -ski and -cki become -ska and -cka for girls and women.
        surnames: &[
            "Kowalski",
            "Nowak",
            "Wiśniewski",
            "Wójcik",
            "Kamiński",
            "Lewandowski",
            "Zieliński",
            "Szymański",
            "Dąbrowski",
            "Woźniak",
            "Kozłowski",
            "Mazur",
            "Nowicki",
            "Jankowski",
            "Krawczyk",
            "Grabowski",
        ],
        english_middle: false,
    },
    // Romanian, and Roma families from Slovakia, Czechia and Hungary.
    Group {
        weight: 35,
        male: &[
            "Andrei",
            "Ștefan",
            "Alexandru",
            "Ionuț",
            "Matei",
            "Darius",
            "Luca",
            "Gabriel",
            "Mihai",
            "Denis",
            "Patrik",
            "Tomáš",
        ],
        female: &[
            "Ioana",
            "Ana-Maria",
            "Bianca",
            "Elena",
            "Andreea",
            "Daria",
            "Iulia",
            "Maria",
            "Denisa",
            "Alexandra",
            "Nikola",
            "Veronika",
        ],
        surnames: &[
            "Popescu",
            "Ionescu",
            "Popa",
            "Stan",
            "Dumitru",
            "Constantin",
            "Munteanu",
            "Radu",
            "Horváth",
            "Kovács",
            "Lakatos",
            "Balog",
            "Oláh",
        ],
        english_middle: false,
    },
    // Chinese and Vietnamese.
    Group {
        weight: 30,
        male: &[
            "Wei", "Jun", "Hao", "Yu Xuan", "Zi Han", "Ethan", "Ryan", "Jayden", "Minh", "Bao",
            "Khoa", "Kai", "Lucas", "Tian", "Haoran", "Chun Kit",
        ],
        female: &[
            "Mei", "Ka Yan", "Xin Yi", "Yu Ting", "Chloe", "Emily", "Anh", "Linh", "Ngoc",
            "Jasmine", "Hui Min", "Wing Yan", "Lok Yi",
        ],
        surnames: &[
            "Chen", "Wang", "Li", "Zhang", "Liu", "Wong", "Chan", "Lam", "Cheung", "Ng", "Lee",
            "Ho", "Nguyen", "Tran", "Pham", "Le", "Huang", "Yip",
        ],
        english_middle: false,
    },
    // Arab, Kurdish, Afghan, Iranian and Turkish.
    Group {
        weight: 50,
        male: &[
            "Omar", "Yousef", "Karim", "Adam", "Ahmad", "Mustafa", "Tariq", "Hassan", "Ali",
            "Hussein", "Rami", "Ziad", "Sherzad", "Rebin", "Hamid", "Nawid", "Mehmet", "Emre",
            "Yusuf",
        ],
        female: &[
            "Layla", "Mariam", "Nour", "Huda", "Rania", "Yasmin", "Lina", "Amira", "Hana", "Sara",
            "Shilan", "Zeynep", "Elif", "Parisa", "Mahsa",
        ],
        surnames: &[
            "Al-Hassan",
            "Haddad",
            "Nasser",
            "Saleh",
            "Mansour",
            "Karimi",
            "Ahmadi",
            "Rahimi",
            "Hosseini",
            "Abdullah",
            "El-Sayed",
            "Yılmaz",
            "Demir",
            "Kaya",
            "Abdulrahman",
            "Al-Amin",
            "Hamdan",
            "Mahmoudi",
            "Khalil",
            "Aziz",
        ],
        english_middle: false,
    },
    // French, Portuguese, Spanish, Italian and Latin American.
    Group {
        weight: 40,
        male: &[
            "Théo",
            "Mattéo",
            "Luca",
            "João",
            "Tomás",
            "Rafael",
            "Gonçalo",
            "Mateo",
            "Santiago",
            "Diego",
            "Gabriel",
            "Lorenzo",
            "Enzo",
            "Noé",
            "Hugo",
            "Jérémie",
        ],
        female: &[
            "Chloé",
            "Renée",
            "Zoé",
            "Amélie",
            "Inès",
            "Léa",
            "Noémie",
            "Anaïs",
            "Beatriz",
            "Inês",
            "Lucía",
            "Sofía",
            "Valentina",
            "Giulia",
            "Camila",
            "Maëlle",
        ],
        surnames: &[
            "Da Silva",
            "Dos Santos",
            "Ferreira",
            "Rodrigues",
            "Costa",
            "Martins",
            "García",
            "López",
            "Rossi",
            "Esposito",
            "Dubois",
            "Lefèvre",
            "Moreau",
            "Fernández",
            "Pereira",
            "Gomes",
            "Rocha",
            "Bianchi",
            "Mendes",
            "De Souza",
        ],
        english_middle: false,
    },
];

const MIDDLE_MALE: &[&str] = &[
    "James",
    "John",
    "Thomas",
    "William",
    "Lee",
    "Michael",
    "David",
    "Joseph",
    "Alexander",
    "Anthony",
    "Edward",
    "Christopher",
];

const MIDDLE_FEMALE: &[&str] = &[
    "Rose",
    "Mae",
    "Grace",
    "Louise",
    "Elizabeth",
    "Jane",
    "Marie",
    "Anne",
    "Hope",
    "Faith",
    "Jade",
    "Victoria",
];

/// Other spellings and short forms a name is known by: (name, alias).
const NAME_VARIANTS: &[(&str, &str)] = &[
    // Transliterations.
    ("Muhammad", "Mohammed"),
    ("Muhammad", "Mohammad"),
    ("Mohammed", "Muhammad"),
    ("Mohammed", "Mohamed"),
    ("Mohamed", "Mohammed"),
    ("Yusuf", "Yousef"),
    ("Yousef", "Yusuf"),
    ("Aisha", "Ayesha"),
    ("Ayesha", "Aisha"),
    ("Fatima", "Fatimah"),
    ("Maryam", "Mariam"),
    ("Mariam", "Maryam"),
    ("Khadija", "Khadijah"),
    ("Ibrahim", "Ebrahim"),
    ("Zakariya", "Zakaria"),
    ("Sumaiya", "Sumaya"),
    ("Ahmad", "Ahmed"),
    ("Hussein", "Husain"),
    ("Nour", "Noor"),
    ("Hana", "Hannah"),
    ("Wei", "Wai"),
    ("Chun Kit", "Chun-Kit"),
    ("Ka Yan", "Kayan"),
    ("Seán", "Shaun"),
    ("Caoimhe", "Keeva"),
    ("Siobhán", "Shivaun"),
    ("Ciarán", "Kieran"),
    ("Niamh", "Neve"),
    ("Saoirse", "Seersha"),
    ("Eilidh", "Ailie"),
    // Short forms and nicknames.
    ("Alexander", "Alex"),
    ("Alexandru", "Alex"),
    ("Aleksander", "Olek"),
    ("Oliver", "Ollie"),
    ("Thomas", "Tom"),
    ("Thomas", "Tommy"),
    ("William", "Will"),
    ("William", "Billy"),
    ("Frederick", "Freddie"),
    ("Alfred", "Alfie"),
    ("Samuel", "Sam"),
    ("Joseph", "Joe"),
    ("Daniel", "Danny"),
    ("Jacob", "Jake"),
    ("Elizabeth", "Lizzie"),
    ("Elizabeth", "Beth"),
    ("Jessica", "Jess"),
    ("Rebecca", "Becky"),
    ("Victoria", "Tori"),
    ("Katherine", "Katie"),
    ("Charlotte", "Lottie"),
    ("Isabella", "Bella"),
    ("Olivia", "Liv"),
    ("Oluwaseun", "Seun"),
    ("Temiloluwa", "Temi"),
    ("Oluwatobiloba", "Tobi"),
    ("Ifeoluwa", "Ife"),
    ("Chiamaka", "Amaka"),
    ("Chukwuemeka", "Emeka"),
    ("Oluwadamilola", "Dami"),
    ("Funmilayo", "Funmi"),
    ("Abdirahman", "Abdi"),
    ("Abdullahi", "Abdi"),
    ("Małgorzata", "Gosia"),
    ("Wojciech", "Wojtek"),
    ("Zuzanna", "Zuzia"),
    ("Aleksandra", "Ola"),
    ("Bartłomiej", "Bartek"),
    ("Franciszek", "Franek"),
    ("Mattéo", "Matt"),
    ("Valentina", "Vale"),
    ("Nathaniel", "Nate"),
    ("Jermaine", "Jermz"),
];

/// Other spellings of surnames: (surname, alias).
const SURNAME_VARIANTS: &[(&str, &str)] = &[
    ("Hussain", "Hussein"),
    ("Hussein", "Hussain"),
    ("Ahmed", "Ahmad"),
    ("Chowdhury", "Choudhury"),
    ("Rahman", "Rehman"),
    ("Mohamed", "Mohammed"),
    ("Mahmood", "Mehmood"),
    ("Uddin", "Udin"),
    ("Nguyen", "Nguyễn"),
    ("Tran", "Trần"),
    ("Zhang", "Cheung"),
    ("Chen", "Chan"),
    ("MacDonald", "McDonald"),
    ("McKenzie", "Mackenzie"),
    ("Ó Briain", "O'Brien"),
    ("D'Souza", "Dsouza"),
    ("O'Connor", "Connor"),
    ("Yılmaz", "Yilmaz"),
    ("Abdulrahman", "Abdul Rahman"),
    ("Al-Hassan", "Alhassan"),
];

const WORKER_FEMALE: &[&str] = &[
    "Sarah",
    "Claire",
    "Rachel",
    "Emma",
    "Joanne",
    "Priya",
    "Funmi",
    "Grace",
    "Helen",
    "Nadia",
    "Michelle",
    "Karen",
    "Lucy",
    "Hannah",
    "Aisha",
    "Sinéad",
    "Agnieszka",
    "Mercy",
    "Farah",
    "Louise",
    "Natalie",
    "Samira",
    "Yvonne",
    "Andrea",
    "Bukola",
    "Chipo",
];

const WORKER_MALE: &[&str] = &[
    "David", "James", "Mark", "Daniel", "Tunde", "Ravi", "Paul", "Simon", "Gareth", "Tomasz",
    "Ayodele", "Marcus", "Kwame", "Imran", "Stephen", "Dominic",
];

const WORKER_SURNAMES: &[&str] = &[
    "Adeyemi",
    "Bennett",
    "Chaudhry",
    "Dlamini",
    "Edwards",
    "Fitzgerald",
    "Gordon",
    "Hollis",
    "Iqbal",
    "Jenkins",
    "Kaur",
    "Lindqvist",
    "Mensah",
    "Nowak",
    "O'Donnell",
    "Pearson",
    "Quarshie",
    "Rahman",
    "Sutherland",
    "Thornton",
    "Underwood",
    "Vasquez",
    "Whitmore",
    "Yeboah",
    "Zielińska",
    "Morrison-Hale",
];

// ---------------------------------------------------------------------------------------------
// Address tables: real postcode districts of one borough, with made-up street names.

/// (outward code, locality, weight).
const DISTRICTS: &[(&str, &str, u32)] = &[
    ("CR0", "Croydon", 30),
    ("CR0", "Addiscombe", 8),
    ("CR0", "Shirley", 5),
    ("CR0", "New Addington", 10),
    ("CR0", "Waddon", 5),
    ("CR2", "South Croydon", 8),
    ("CR2", "Selsdon", 4),
    ("CR7", "Thornton Heath", 16),
    ("CR8", "Purley", 4),
    ("CR5", "Coulsdon", 4),
    ("SE25", "South Norwood", 10),
    ("SE19", "Upper Norwood", 5),
    ("SW16", "Norbury", 7),
];

const STREET_NAMES: &[&str] = &[
    "Alder",
    "Beech",
    "Birch",
    "Cedar",
    "Elm",
    "Hazel",
    "Holly",
    "Juniper",
    "Larch",
    "Linden",
    "Maple",
    "Rowan",
    "Willow",
    "Bramble",
    "Chestnut",
    "Heather",
    "Kestrel",
    "Lark",
    "Merlin",
    "Plover",
    "Sparrow",
    "Wren",
    "Heron",
    "Foxglove",
    "Lavender",
    "Meadow",
    "Orchard",
    "Primrose",
    "Thistle",
    "Clover",
    "Harebell",
    "Elder",
    "Hawthorn",
    "Blackthorn",
    "Medlar",
    "Quince",
    "Sorrel",
    "Teasel",
    "Yarrow",
    "Ashdown",
    "Belmont",
    "Carlton",
    "Denholm",
    "Fairlawn",
    "Glenhurst",
    "Hartley",
    "Kingsmead",
    "Lyndhurst",
    "Marlow",
    "Newlands",
    "Oakfield",
    "Pembury",
    "Radstock",
    "Stanhope",
    "Tennyson",
    "Wickham",
];

const STREET_KINDS: &[&str] = &[
    "Road", "Road", "Road", "Avenue", "Close", "Gardens", "Way", "Lane", "Crescent", "Street",
    "Street", "Drive", "Grove", "Walk", "Place", "Rise", "Terrace", "Mews",
];

const BLOCK_KINDS: &[&str] = &["House", "Court", "Lodge", "Point", "Heights"];

/// Letters used in the inward part of UK postcodes (never C, I, K, M, O or V).
const INWARD_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

// ---------------------------------------------------------------------------------------------
// Plans.

const NEGLECT: &str = "neglect";
const PHYSICAL: &str = "physical";
const SEXUAL: &str = "sexual";
const EMOTIONAL: &str = "emotional";

/// Single categories in their canonical order, and their weights.
const SINGLE_CATEGORIES: [(&str, u32); 4] =
    [(NEGLECT, 48), (PHYSICAL, 10), (SEXUAL, 4), (EMOTIONAL, 35)];

/// Pairs of categories (in canonical order) and their weights.
const CATEGORY_PAIRS: [([&str; 2], u32); 4] = [
    ([NEGLECT, EMOTIONAL], 50),
    ([NEGLECT, PHYSICAL], 20),
    ([PHYSICAL, EMOTIONAL], 20),
    ([SEXUAL, EMOTIONAL], 10),
];

/// Children by age in whole years, 0 to 17 (under-ones and under-fives are the most common).
const AGE_WEIGHTS: [u32; 18] = [11, 8, 8, 7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 4, 3, 2, 1];

/// Number of social workers in the demo borough's teams.
const WORKERS: usize = 40;

// ---------------------------------------------------------------------------------------------

/// splitmix64: small, fast and good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform index into a slice of length `n` (`n` > 0).
    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }

    /// An index chosen with the given weights.
    fn weighted<I: IntoIterator<Item = u32> + Clone>(&mut self, weights: I) -> usize {
        let total: u64 = weights.clone().into_iter().map(u64::from).sum();
        let mut roll = self.below(total);
        for (i, w) in weights.into_iter().enumerate() {
            let w = u64::from(w);
            if roll < w {
                return i;
            }
            roll -= w;
        }
        unreachable!("roll below the total weight")
    }

    /// A uniform date in `lo..=hi` (`lo` when the range is empty).
    fn date_between(&mut self, lo: NaiveDate, hi: NaiveDate) -> NaiveDate {
        let span = (hi - lo).num_days();
        if span <= 0 {
            return lo;
        }
        lo + Days::new(self.below(span as u64 + 1))
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A keyed bijection on 27-bit integers, used to hand out unique, scattered NHS numbers.
fn permute27(mut x: u32, key: u64) -> u32 {
    const MASK: u32 = (1 << 27) - 1;
    x = (x ^ (key as u32)) & MASK;
    x ^= x >> 14;
    x = x.wrapping_mul(0x0AD3_E7B5) & MASK;
    x ^= x >> 13;
    x = x.wrapping_add((key >> 32) as u32) & MASK;
    x = x.wrapping_mul(0x0732_1F2D) & MASK;
    x ^= x >> 15;
    x
}

/// NHS numbers handed out: 900 000 000 plus a permutation of `0..NHS_SPAN`.
const NHS_SPAN: u32 = 100_000_000;

fn iso(d: NaiveDate) -> String {
    let mut s = String::with_capacity(10);
    let (y, m, day) = (d.year() as u32, d.month(), d.day());
    for v in [y / 1000 % 10, y / 100 % 10, y / 10 % 10, y % 10] {
        s.push(char::from(b'0' + v as u8));
    }
    s.push('-');
    s.push(char::from(b'0' + (m / 10) as u8));
    s.push(char::from(b'0' + (m % 10) as u8));
    s.push('-');
    s.push(char::from(b'0' + (day / 10) as u8));
    s.push(char::from(b'0' + (day % 10) as u8));
    s
}

fn add_months(d: NaiveDate, months: u32) -> NaiveDate {
    d.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

fn sub_months(d: NaiveDate, months: u32) -> NaiveDate {
    d.checked_sub_months(Months::new(months))
        .unwrap_or(NaiveDate::MIN)
}

/// The working day on or before `d`: conferences are not held at weekends, on Christmas Day,
/// Boxing Day or New Year's Day.
fn weekday_on_or_before(mut d: NaiveDate) -> NaiveDate {
    loop {
        let holiday = matches!((d.month(), d.day()), (12, 25) | (12, 26) | (1, 1));
        if holiday || matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            d = d - Days::new(1);
        } else {
            return d;
        }
    }
}

/// The feminine form of Polish surnames (Kowalski → Kowalska), part by part.
fn feminine_surname(surname: &str) -> String {
    if !surname.contains("ki") {
        return surname.to_owned();
    }
    surname
        .split('-')
        .map(|part| match part.strip_suffix("ki") {
            Some(stem) if stem.ends_with('s') || stem.ends_with('c') || stem.ends_with("dz") => {
                format!("{stem}ka")
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A name as a system without accents would hold it (Zoë → Zoe, Łukasz → Lukasz). Written out
/// here, apart from the matcher's own normalisation, so tests of the matcher do not grade it
/// against itself.
pub fn without_diacritics(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'ą' | 'ă' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'ę' | 'ễ' => 'e',
            'í' | 'ì' | 'î' | 'ï' | 'ı' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' | 'ć' => 'c',
            'ł' => 'l',
            'ń' | 'ñ' => 'n',
            'ś' | 'ș' => 's',
            'ț' => 't',
            'ź' | 'ż' => 'z',
            'ầ' => 'a',
            'Á' | 'À' | 'Â' | 'Ä' => 'A',
            'É' | 'È' => 'E',
            'Í' => 'I',
            'Ó' | 'Ö' => 'O',
            'Ú' | 'Ü' => 'U',
            'Ł' => 'L',
            'Ś' | 'Ș' => 'S',
            'Ż' | 'Ź' => 'Z',
            other => other,
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gender {
    Male,
    Female,
    Unknown,
}

impl Gender {
    fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Unknown => "unknown",
        }
    }
}

/// A plan's start and next review.
#[derive(Clone, Copy)]
struct PlanDates {
    start: NaiveDate,
    review: NaiveDate,
}

/// What the children of one household share.
struct Household {
    /// Group the children's given names come from.
    given_group: usize,
    /// Group the family's surnames come from.
    surname_group: usize,
    /// The family surname, masculine form.
    surname: String,
    address: String,
    postcode: String,
    worker: usize,
    /// `None`: no current plan for the household.
    categories: Option<Vec<&'static str>>,
}

/// Deterministic generator of synthetic register rows.
pub struct Generator {
    rng: Rng,
    today: NaiveDate,
    /// The earliest date of birth of someone under 18 on `today`.
    earliest_dob: NaiveDate,
    next_id: u64,
    nhs_counter: u32,
    nhs_key: u64,
    postcode_salt: u64,
    /// (name, telephone) of each lead social worker.
    workers: Vec<(String, String)>,
    /// Rows of a household already made but not yet handed out.
    pending: VecDeque<SyntheticChild>,
}

impl Generator {
    /// `today` fixes every date relative to it, so output is reproducible.
    pub fn new(seed: u64, today: NaiveDate) -> Generator {
        let mut rng = Rng(mix64(seed ^ 0x6370_7265_6721_0001));
        let nhs_key = rng.next_u64();
        let postcode_salt = rng.next_u64();
        let earliest_dob = sub_months(today, 18 * 12) + Days::new(1);
        let mut workers = Vec::with_capacity(WORKERS);
        let desk_start = rng.below(1000);
        let mobile_start = rng.below(1000);
        for i in 0..WORKERS as u64 {
            let given = if rng.chance(750) {
                rng.pick(WORKER_FEMALE)
            } else {
                rng.pick(WORKER_MALE)
            };
            let surname = rng.pick(WORKER_SURNAMES);
            // Distinct numbers: steps coprime with 1000 visit each ending once.
            let phone = if rng.chance(300) {
                format!("07700 900{:03}", (mobile_start + i * 7) % 1000)
            } else {
                format!("020 7946 0{:03}", (desk_start + i * 13) % 1000)
            };
            workers.push((format!("{given} {surname}"), phone));
        }
        Generator {
            rng,
            today,
            earliest_dob,
            next_id: 1,
            nhs_counter: 0,
            nhs_key,
            postcode_salt,
            workers,
            pending: VecDeque::new(),
        }
    }

    /// Generates `n` children, ids "C" + 7-digit zero-padded counter starting at C0000001
    /// (unique). Successive calls continue the same register.
    pub fn children(&mut self, n: usize) -> Vec<SyntheticChild> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.pending.pop_front() {
                Some(child) => out.push(child),
                None => self.household(),
            }
        }
        out
    }

    /// Makes the rows of one household into `pending`: one child, brothers and sisters at one
    /// address, or an unborn child (sometimes with older siblings).
    fn household(&mut self) {
        let surname_group = self.group();
        // Children of mixed heritage: given names from another community than the surname.
        let given_group = if self.rng.chance(120) {
            self.group()
        } else {
            surname_group
        };
        let surname = self.family_surname(surname_group);
        let (address, postcode) = self.address();
        let worker = self.rng.index(self.workers.len());
        let (born, unborn) = match self.rng.below(1000) {
            0..22 => (0, true),
            22..192 => (2 + self.rng.weighted([50, 35, 15]), self.rng.chance(100)),
            _ => (1, false),
        };
        let categories = if born > 0 && self.rng.chance(105) {
            None
        } else {
            Some(self.categories())
        };
        let hh = Household {
            given_group,
            surname_group,
            surname,
            address,
            postcode,
            worker,
            categories,
        };

        if born > 0 {
            // Youngest first, each older one at least ten months (310 days) older, or a twin.
            let mut dobs = Vec::with_capacity(born);
            let youngest_age = if born == 1 {
                self.rng.weighted(AGE_WEIGHTS)
            } else {
                self.rng.weighted(AGE_WEIGHTS[..13].iter().copied())
            };
            dobs.push(self.date_of_birth_at_age(youngest_age as u32));
            while dobs.len() < born {
                let prev = dobs[dobs.len() - 1];
                if self.rng.chance(40) {
                    dobs.push(prev);
                    continue;
                }
                let latest = prev - Days::new(310);
                if latest < self.earliest_dob {
                    break;
                }
                let dob = latest - Days::new(self.rng.below(1100));
                dobs.push(dob.max(self.earliest_dob));
            }
            // Siblings are usually on plans made at the same conference.
            let shared = hh.categories.as_ref().map(|_| self.plan_dates(dobs[0]));
            let siblings = dobs.len() > 1;
            for &dob in dobs.iter().rev() {
                let child = self.born_child(&hh, dob, shared, siblings);
                self.push(child);
            }
        }
        if unborn {
            let child = self.unborn_child(&hh);
            self.push(child);
        }
    }

    fn push(&mut self, mut child: SyntheticChild) {
        child.record_id = format!("C{:07}", self.next_id);
        self.next_id += 1;
        self.pending.push_back(child);
    }

    fn group(&mut self) -> usize {
        self.rng.weighted(GROUPS.iter().map(|g| g.weight))
    }

    fn born_child(
        &mut self,
        hh: &Household,
        dob: NaiveDate,
        shared: Option<PlanDates>,
        siblings: bool,
    ) -> SyntheticChild {
        let gender = match self.rng.below(1000) {
            0..15 => Gender::Unknown,
            15..508 => Gender::Male,
            _ => Gender::Female,
        };
        let female_names = match gender {
            Gender::Male => false,
            Gender::Female => true,
            Gender::Unknown => self.rng.chance(500),
        };
        let group = &GROUPS[hh.given_group];
        let names = if female_names {
            group.female
        } else {
            group.male
        };
        let first = self.rng.pick(names);
        let given_names = if !first.contains(' ') && self.rng.chance(330) {
            let generic = if female_names {
                MIDDLE_FEMALE
            } else {
                MIDDLE_MALE
            };
            let mut middle = if group.english_middle && self.rng.chance(500) {
                self.rng.pick(generic)
            } else {
                self.rng.pick(names)
            };
            if middle == first || middle.contains(' ') {
                middle = self.rng.pick(generic);
            }
            if middle == first {
                first.to_owned()
            } else {
                format!("{first} {middle}")
            }
        } else {
            first.to_owned()
        };

        // Half-siblings may carry another surname.
        let family = if siblings && self.rng.chance(150) {
            self.rng.pick(GROUPS[hh.surname_group].surnames).to_owned()
        } else {
            hh.surname.clone()
        };
        let surname = if gender == Gender::Female {
            feminine_surname(&family)
        } else {
            family
        };
        let other_names = if self.rng.chance(150) {
            self.aliases(first, &given_names, &surname, hh.surname_group, gender)
        } else {
            Vec::new()
        };
        let nhs_number = if self.rng.chance(50) {
            String::new()
        } else {
            self.next_nhs()
        };

        let mut child = blank();
        child.given_names = given_names;
        child.surname = surname;
        child.other_names = other_names;
        child.date_of_birth = iso(dob);
        child.gender = gender.as_str().to_owned();
        child.nhs_number = nhs_number;
        child.address = hh.address.clone();
        child.postcode = hh.postcode.clone();
        if let Some(categories) = &hh.categories {
            let categories = if self.rng.chance(850) {
                categories.clone()
            } else {
                self.categories()
            };
            let dates = match shared {
                Some(dates) if self.rng.chance(900) => dates,
                _ => self.plan_dates(dob),
            };
            let worker = if self.rng.chance(900) {
                hh.worker
            } else {
                self.rng.index(self.workers.len())
            };
            self.fill_plan(&mut child, &categories, dates, worker);
        }
        child
    }

    /// An unborn child on a pre-birth plan, known by the mother's details.
    fn unborn_child(&mut self, hh: &Household) -> SyntheticChild {
        let today = self.today;
        let mother_given = self.rng.pick(GROUPS[hh.given_group].female);
        let mother_surname = feminine_surname(&hh.surname);
        let edd = self
            .rng
            .date_between(today - Days::new(14), today + Days::new(30 * 7));
        let mother_age = 16 + self.rng.below(14) + self.rng.below(14);
        let mother_dob = self.date_at_age(mother_age as u32, NaiveDate::MIN);
        let mother_nhs = self.next_nhs();

        let mut child = blank();
        if self.rng.chance(500) {
            child.given_names = "Baby".to_owned();
        }
        child.surname = mother_surname.clone();
        child.gender = Gender::Unknown.as_str().to_owned();
        child.address = hh.address.clone();
        child.postcode = hh.postcode.clone();
        child.expected_delivery_date = iso(edd);
        child.mother_given_names = mother_given.to_owned();
        child.mother_surname = mother_surname;
        child.mother_date_of_birth = iso(mother_dob);
        child.mother_nhs_number = mother_nhs;

        let categories = match &hh.categories {
            Some(c) if self.rng.chance(850) => c.clone(),
            _ => self.categories(),
        };
        // A pre-birth plan started in the last six months.
        let lower = today - Days::new(182);
        let mut start = self.rng.date_between(lower, today - Days::new(1));
        if weekday_on_or_before(start) >= lower {
            start = weekday_on_or_before(start);
        }
        let dates = PlanDates {
            start,
            review: self.review_date(start),
        };
        self.fill_plan(&mut child, &categories, dates, hh.worker);
        child
    }

    fn fill_plan(
        &self,
        child: &mut SyntheticChild,
        categories: &[&str],
        dates: PlanDates,
        worker: usize,
    ) {
        child.categories = categories.iter().map(|c| (*c).to_owned()).collect();
        child.plan_start_date = iso(dates.start);
        child.next_review_date = iso(dates.review);
        let (name, phone) = &self.workers[worker];
        child.lead_social_worker = name.clone();
        child.lead_social_worker_phone = phone.clone();
        child.lead_social_worker_email = work_email(name);
    }

    /// A date of birth of a child aged `age` (0 to 17) today.
    fn date_of_birth_at_age(&mut self, age: u32) -> NaiveDate {
        self.date_at_age(age, self.earliest_dob)
    }

    /// A date of birth of someone aged `age` today, not before `earliest`.
    fn date_at_age(&mut self, age: u32, earliest: NaiveDate) -> NaiveDate {
        let lo = (sub_months(self.today, 12 * (age + 1)) + Days::new(1)).max(earliest);
        let hi = sub_months(self.today, 12 * age);
        self.rng.date_between(lo, hi)
    }

    /// A plan's start in the last two years (not before the date of birth) and its next review.
    fn plan_dates(&mut self, dob: NaiveDate) -> PlanDates {
        let today = self.today;
        let lower = (today - Days::new(730)).max(dob);
        let (lo, hi) = match self.rng.weighted([25, 40, 35]) {
            0 => (today - Days::new(91), today),
            1 => (today - Days::new(365), today - Days::new(92)),
            _ => (today - Days::new(730), today - Days::new(366)),
        };
        let lo = lo.max(lower);
        let mut start = if lo <= hi {
            self.rng.date_between(lo, hi)
        } else {
            self.rng.date_between(lower, today)
        };
        if weekday_on_or_before(start) >= lower {
            start = weekday_on_or_before(start);
        }
        PlanDates {
            start,
            review: self.review_date(start),
        }
    }

    /// The next review conference: within three months of the start for a new plan, then every
    /// six months; a few are a little overdue.
    fn review_date(&mut self, start: NaiveDate) -> NaiveDate {
        let today = self.today;
        let first = add_months(start, 3);
        if first >= today {
            let review = weekday_on_or_before(first - Days::new(self.rng.below(11)));
            return review.max(start + Days::new(1));
        }
        if self.rng.chance(40) {
            return weekday_on_or_before(today - Days::new(1 + self.rng.below(9)));
        }
        let mut k = 1;
        let mut review = add_months(start, 9);
        while review < today {
            k += 1;
            review = add_months(start, 3 + 6 * k);
        }
        let review = review.min(add_months(today, 6));
        weekday_on_or_before(review - Days::new(self.rng.below(8)))
    }

    fn categories(&mut self) -> Vec<&'static str> {
        if self.rng.chance(80) {
            let pair = self.rng.weighted(CATEGORY_PAIRS.iter().map(|p| p.1));
            CATEGORY_PAIRS[pair].0.to_vec()
        } else {
            let one = self.rng.weighted(SINGLE_CATEGORIES.iter().map(|c| c.1));
            vec![SINGLE_CATEGORIES[one].0]
        }
    }

    /// A family surname, sometimes double-barrelled.
    fn family_surname(&mut self, group: usize) -> String {
        let first = self.rng.pick(GROUPS[group].surnames);
        if self.rng.chance(45) && !first.contains('-') {
            let other_group = if self.rng.chance(400) {
                self.group()
            } else {
                group
            };
            let second = self.rng.pick(GROUPS[other_group].surnames);
            if second != first && !second.contains('-') {
                return format!("{first}-{second}");
            }
        }
        first.to_owned()
    }

    /// A street address in the borough and its postcode (one postcode per stretch of street).
    fn address(&mut self) -> (String, String) {
        let district = self.rng.weighted(DISTRICTS.iter().map(|d| d.2));
        let (outward, locality, _) = DISTRICTS[district];
        let name = self.rng.index(STREET_NAMES.len());
        let kind = self.rng.index(STREET_KINDS.len());
        let number = 1 + if self.rng.chance(700) {
            self.rng.below(80)
        } else {
            self.rng.below(220)
        };
        let h = mix64(
            self.postcode_salt
                ^ ((district as u64) << 40)
                ^ ((name as u64) << 24)
                ^ ((kind as u64) << 16)
                ^ (number / 24),
        );
        let mut postcode = String::with_capacity(8);
        postcode.push_str(outward);
        postcode.push(' ');
        postcode.push(char::from(b'0' + (h % 10) as u8));
        postcode.push(char::from(INWARD_LETTERS[((h >> 8) % 20) as usize]));
        postcode.push(char::from(INWARD_LETTERS[((h >> 16) % 20) as usize]));
        let street = STREET_NAMES[name];
        let street_kind = STREET_KINDS[kind];
        let address = if self.rng.chance(220) {
            let block = self.rng.pick(STREET_NAMES);
            let block_kind = self.rng.pick(BLOCK_KINDS);
            let flat = 1 + self.rng.below(40);
            format!("Flat {flat}, {block} {block_kind}, {street} {street_kind}, {locality}")
        } else {
            format!("{number} {street} {street_kind}, {locality}")
        };
        (address, postcode)
    }

    /// Other names a child is known by: a short form or other spelling of the first name, another
    /// spelling of the surname, or a previous surname.
    fn aliases(
        &mut self,
        first: &str,
        given_names: &str,
        surname: &str,
        group: usize,
        gender: Gender,
    ) -> Vec<String> {
        let count = if self.rng.chance(120) { 2 } else { 1 };
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let alias = match self.rng.below(3) {
                0 => self
                    .given_variant(first)
                    .map(|variant| format!("{variant} {surname}")),
                1 => self
                    .surname_variant(surname)
                    .map(|variant| format!("{given_names} {variant}")),
                _ => None,
            };
            let alias = alias.unwrap_or_else(|| {
                let previous = self.rng.pick(GROUPS[group].surnames);
                let previous = if gender == Gender::Female {
                    feminine_surname(previous)
                } else {
                    previous.to_owned()
                };
                format!("{given_names} {previous}")
            });
            if !out.contains(&alias) && alias != format!("{given_names} {surname}") {
                out.push(alias);
            }
        }
        out
    }

    fn given_variant(&mut self, first: &str) -> Option<String> {
        let listed = NAME_VARIANTS.iter().filter(|(name, _)| *name == first);
        let n = listed.clone().count();
        let total = n + usize::from(!first.is_ascii());
        if total == 0 {
            return None;
        }
        let i = self.rng.index(total);
        match listed.clone().nth(i) {
            Some((_, alias)) => Some((*alias).to_owned()),
            None => Some(without_diacritics(first)),
        }
    }

    fn surname_variant(&mut self, surname: &str) -> Option<String> {
        let listed = SURNAME_VARIANTS.iter().filter(|(name, _)| *name == surname);
        let n = listed.clone().count();
        let plain = usize::from(!surname.is_ascii());
        let halves = if surname.contains('-') { 2 } else { 0 };
        let total = n + plain + halves;
        if total == 0 {
            return None;
        }
        let i = self.rng.index(total);
        if i < n {
            listed.clone().nth(i).map(|(_, alias)| (*alias).to_owned())
        } else if i < n + plain {
            Some(without_diacritics(surname))
        } else {
            // A double-barrelled surname is often recorded as one half.
            let mut parts = surname.splitn(2, '-');
            let (a, b) = (parts.next(), parts.next());
            if i == n + plain { a } else { b }.map(str::to_owned)
        }
    }

    /// A unique NHS number with a valid check digit, in the range not issued to patients.
    fn next_nhs(&mut self) -> String {
        loop {
            assert!(
                self.nhs_counter < NHS_SPAN,
                "synthetic NHS numbers exhausted"
            );
            let mut x = self.nhs_counter;
            self.nhs_counter += 1;
            // Cycle-walk the 27-bit permutation into 0..NHS_SPAN: still a permutation.
            loop {
                x = permute27(x, self.nhs_key);
                if x < NHS_SPAN {
                    break;
                }
            }
            if let Some(number) = ident::nhs_number_with_check_digit(900_000_000 + x) {
                return number;
            }
        }
    }
}

fn blank() -> SyntheticChild {
    SyntheticChild {
        record_id: String::new(),
        given_names: String::new(),
        surname: String::new(),
        other_names: Vec::new(),
        date_of_birth: String::new(),
        gender: String::new(),
        nhs_number: String::new(),
        address: String::new(),
        postcode: String::new(),
        categories: Vec::new(),
        plan_start_date: String::new(),
        lead_social_worker: String::new(),
        lead_social_worker_phone: String::new(),
        next_review_date: String::new(),
        lead_social_worker_email: String::new(),
        expected_delivery_date: String::new(),
        mother_given_names: String::new(),
        mother_surname: String::new(),
        mother_date_of_birth: String::new(),
        mother_nhs_number: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).expect("date")
    }

    fn date(s: &str) -> NaiveDate {
        ident::date("date", s).expect("an ISO date")
    }

    fn register(seed: u64, n: usize) -> Vec<SyntheticChild> {
        Generator::new(seed, today()).children(n)
    }

    fn has_plan(c: &SyntheticChild) -> bool {
        !c.plan_start_date.is_empty()
    }

    /// Checks one row against the register's rules; panics with the row on failure.
    fn check_row(c: &SyntheticChild, today: NaiveDate) {
        let ctx = format!("{c:?}");
        assert!(
            matches!(c.gender.as_str(), "male" | "female" | "unknown"),
            "{ctx}"
        );
        assert_eq!(
            ident::postcode(&c.postcode).as_deref(),
            Ok(c.postcode.as_str()),
            "{ctx}"
        );
        assert!(!c.address.is_empty() && !c.surname.is_empty(), "{ctx}");
        let unborn = !c.expected_delivery_date.is_empty();
        if unborn {
            assert!(
                c.date_of_birth.is_empty() && c.nhs_number.is_empty(),
                "{ctx}"
            );
            assert_eq!(c.gender, "unknown", "{ctx}");
            assert!(c.given_names.is_empty() || c.given_names == "Baby", "{ctx}");
            assert_eq!(c.surname, c.mother_surname, "{ctx}");
            assert!(!c.mother_given_names.is_empty(), "{ctx}");
            let edd = date(&c.expected_delivery_date);
            assert!(edd >= today - Days::new(14), "{ctx}");
            assert!(edd <= today + Days::new(210), "{ctx}");
            assert!(ident::expected_delivery_date(edd, today).is_ok(), "{ctx}");
            let mother_age = ident::age_on(date(&c.mother_date_of_birth), today);
            assert!((16..=42).contains(&mother_age), "{ctx}");
            assert!(ident::nhs_number(&c.mother_nhs_number).is_ok(), "{ctx}");
            assert!(has_plan(c), "{ctx}");
            let start = date(&c.plan_start_date);
            assert!(start < today && start >= today - Days::new(183), "{ctx}");
        } else {
            let dob = date(&c.date_of_birth);
            assert_eq!(ident::child_date_of_birth(dob, today), Ok(dob), "{ctx}");
            if !c.nhs_number.is_empty() {
                assert_eq!(
                    ident::nhs_number(&c.nhs_number).as_deref(),
                    Ok(c.nhs_number.as_str()),
                    "{ctx}"
                );
            }
            assert!(!c.given_names.is_empty(), "{ctx}");
            for field in [
                &c.mother_given_names,
                &c.mother_surname,
                &c.mother_date_of_birth,
                &c.mother_nhs_number,
            ] {
                assert!(field.is_empty(), "{ctx}");
            }
        }
        if has_plan(c) {
            assert!(matches!(c.categories.len(), 1 | 2), "{ctx}");
            for cat in &c.categories {
                assert!(
                    matches!(
                        cat.as_str(),
                        "neglect" | "physical" | "sexual" | "emotional"
                    ),
                    "{ctx}"
                );
            }
            assert!(ident::phone(&c.lead_social_worker_phone).is_ok(), "{ctx}");
            assert!(!c.lead_social_worker.is_empty(), "{ctx}");
            let start = date(&c.plan_start_date);
            assert!(start <= today && start >= today - Days::new(730), "{ctx}");
            if !unborn {
                assert!(start >= date(&c.date_of_birth), "{ctx}");
            }
            let review = date(&c.next_review_date);
            assert!(review > start, "{ctx}");
            if add_months(start, 3) >= today {
                assert!(review <= add_months(start, 3), "{ctx}");
            } else {
                assert!(review >= today - Days::new(14), "{ctx}");
                assert!(review <= add_months(today, 6), "{ctx}");
            }
        } else {
            assert!(c.categories.is_empty(), "{ctx}");
            for field in [
                &c.plan_start_date,
                &c.lead_social_worker,
                &c.lead_social_worker_phone,
                &c.next_review_date,
            ] {
                assert!(field.is_empty(), "{ctx}");
            }
        }
        for name in c.other_names.iter().chain([&c.given_names, &c.surname]) {
            assert!(!name.contains(';') && name.trim() == name, "{ctx}");
        }
    }

    #[test]
    fn every_row_passes_the_identifier_checks() {
        for (seed, today) in [
            (1, today()),
            (2, date("2028-02-29")),
            (3, date("2027-01-01")),
        ] {
            for c in Generator::new(seed, today).children(20_000) {
                check_row(&c, today);
            }
        }
    }

    #[test]
    fn ids_and_nhs_numbers_are_unique() {
        let rows = register(7, 50_000);
        for (i, c) in rows.iter().enumerate() {
            assert_eq!(c.record_id, format!("C{:07}", i + 1));
        }
        let mut seen = HashSet::new();
        for c in &rows {
            for nhs in [&c.nhs_number, &c.mother_nhs_number] {
                if !nhs.is_empty() {
                    assert!(seen.insert(nhs.clone()), "duplicate NHS number {nhs}");
                }
            }
        }
    }

    #[test]
    fn same_seed_gives_the_same_register_whatever_the_batches() {
        let whole = register(42, 3_000);
        assert_eq!(whole, register(42, 3_000));
        let mut g = Generator::new(42, today());
        let mut batched = g.children(1);
        batched.extend(g.children(999));
        batched.extend(g.children(2_000));
        assert_eq!(whole, batched);
        assert_ne!(whole, register(43, 3_000));
    }

    #[test]
    fn register_has_the_variety_of_a_real_one() {
        let rows = register(11, 20_000);
        let n = rows.len() as f64;
        let share =
            |f: &dyn Fn(&SyntheticChild) -> bool| rows.iter().filter(|c| f(c)).count() as f64 / n;
        let unborn = share(&|c| !c.expected_delivery_date.is_empty());
        let no_plan = share(&|c| !has_plan(c));
        let aliases = share(&|c| !c.other_names.is_empty());
        let two_categories = share(&|c| c.categories.len() == 2);
        let no_nhs = share(&|c| c.nhs_number.is_empty() && c.expected_delivery_date.is_empty());
        let unknown_gender = share(&|c| c.gender == "unknown");
        let male = share(&|c| c.gender == "male");
        let female = share(&|c| c.gender == "female");
        let neglect_only = share(&|c| c.categories == ["neglect"]);
        let emotional_only = share(&|c| c.categories == ["emotional"]);
        let accented = share(&|c| !c.given_names.is_ascii() || !c.surname.is_ascii());
        let apostrophe = share(&|c| c.surname.contains('\''));
        let hyphenated = share(&|c| c.surname.contains('-'));
        let middle = share(&|c| c.given_names.contains(' '));
        let baby = share(&|c| c.given_names == "Baby");

        let mut at_address: HashMap<(&str, &str), usize> = HashMap::new();
        for c in &rows {
            *at_address.entry((&c.address, &c.postcode)).or_default() += 1;
        }
        let with_siblings = rows
            .iter()
            .filter(|c| at_address[&(c.address.as_str(), c.postcode.as_str())] >= 2)
            .count() as f64
            / n;

        eprintln!(
            "unborn {unborn:.3} no_plan {no_plan:.3} aliases {aliases:.3} two {two_categories:.3} \
             no_nhs {no_nhs:.3} unknown {unknown_gender:.3} male {male:.3} female {female:.3} \
             neglect {neglect_only:.3} emotional {emotional_only:.3} accented {accented:.3} \
             apostrophe {apostrophe:.3} hyphenated {hyphenated:.3} middle {middle:.3} \
             siblings {with_siblings:.3} baby {baby:.3}"
        );
        assert!((0.02..0.04).contains(&unborn), "unborn {unborn}");
        assert!((0.07..0.13).contains(&no_plan), "no plan {no_plan}");
        assert!((0.11..0.19).contains(&aliases), "aliases {aliases}");
        assert!(
            (0.05..0.11).contains(&two_categories),
            "two {two_categories}"
        );
        assert!((0.03..0.07).contains(&no_nhs), "no NHS {no_nhs}");
        assert!(
            (0.02..0.06).contains(&unknown_gender),
            "unknown {unknown_gender}"
        );
        assert!((male - female).abs() < 0.05, "male {male} female {female}");
        assert!(neglect_only > emotional_only && emotional_only > 0.2);
        assert!(
            (0.28..0.45).contains(&with_siblings),
            "siblings {with_siblings}"
        );
        assert!(accented > 0.01 && apostrophe > 0.003 && hyphenated > 0.02);
        assert!(middle > 0.15 && baby > 0.005);
        assert!(rows.iter().any(|c| c.given_names == "Mary Ann"));
        assert!(rows.iter().any(|c| c.surname.ends_with("ska")));
        assert!(
            rows.iter()
                .flat_map(|c| &c.other_names)
                .any(|a| a.starts_with("Mohammed ") || a.starts_with("Muhammad "))
        );
    }

    #[test]
    fn siblings_share_a_home_and_are_born_apart_or_twins() {
        let rows = register(5, 20_000);
        let mut pairs = 0;
        let mut twins = 0;
        for w in rows.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if a.address != b.address || a.postcode != b.postcode {
                continue;
            }
            if a.date_of_birth.is_empty() || b.date_of_birth.is_empty() {
                continue;
            }
            pairs += 1;
            let (older, younger) = (date(&a.date_of_birth), date(&b.date_of_birth));
            if older == younger {
                twins += 1;
            } else {
                assert!(add_months(older, 10) <= younger, "{a:?}\n{b:?}");
            }
        }
        assert!(pairs > 1_000 && twins > 0, "{pairs} pairs, {twins} twins");
    }

    #[test]
    fn csv_round_trips_with_the_same_columns() {
        let rows = register(9, 2_000);
        let mut bytes = Vec::new();
        write_csv(&mut bytes, &rows).expect("write");
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let headers: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(headers, CSV_COLUMNS);
        let mut count = 0;
        for (record, c) in reader.records().zip(&rows) {
            let record = record.expect("record");
            let field = |name: &str| {
                let i = CSV_COLUMNS.iter().position(|h| *h == name).expect("column");
                record.get(i).expect("field").to_owned()
            };
            let list = |s: String| -> Vec<String> {
                if s.is_empty() {
                    Vec::new()
                } else {
                    s.split(';').map(str::to_owned).collect()
                }
            };
            let parsed = SyntheticChild {
                record_id: field("record_id"),
                given_names: field("given_names"),
                surname: field("surname"),
                other_names: list(field("other_names")),
                date_of_birth: field("date_of_birth"),
                gender: field("gender"),
                nhs_number: field("nhs_number"),
                address: field("address"),
                postcode: field("postcode"),
                categories: list(field("category")),
                plan_start_date: field("plan_start_date"),
                lead_social_worker: field("lead_social_worker"),
                lead_social_worker_phone: field("lead_social_worker_phone"),
                next_review_date: field("next_review_date"),
                lead_social_worker_email: field("lead_social_worker_email"),
                expected_delivery_date: field("expected_delivery_date"),
                mother_given_names: field("mother_given_names"),
                mother_surname: field("mother_surname"),
                mother_date_of_birth: field("mother_date_of_birth"),
                mother_nhs_number: field("mother_nhs_number"),
            };
            assert_eq!(&parsed, c);
            count += 1;
        }
        assert_eq!(count, rows.len());
    }

    #[test]
    fn feminine_polish_surnames_and_plain_spellings() {
        assert_eq!(feminine_surname("Kowalski"), "Kowalska");
        assert_eq!(feminine_surname("Nowicki"), "Nowicka");
        assert_eq!(feminine_surname("Smith-Wiśniewski"), "Smith-Wiśniewska");
        assert_eq!(feminine_surname("Nowak"), "Nowak");
        assert_eq!(without_diacritics("Łukasz Wiśniewski"), "Lukasz Wisniewski");
        assert_eq!(without_diacritics("Zoë"), "Zoe");
        assert_eq!(iso(date("2009-03-07")), "2009-03-07");
        // Sunday 27 December 2026 goes back past Boxing Day and Christmas Day.
        assert_eq!(weekday_on_or_before(date("2026-12-27")), date("2026-12-24"));
        assert_eq!(weekday_on_or_before(date("2026-11-23")), date("2026-11-23"));
    }

    /// `cargo test -p cpreg --release --lib synthetic::tests::time_a_million -- --ignored --nocapture`
    #[test]
    #[ignore = "timing only"]
    fn time_a_million() {
        let started = std::time::Instant::now();
        let rows = register(1, 1_000_000);
        let generated = started.elapsed();
        let mut sink = std::io::sink();
        write_csv(&mut sink, &rows).expect("write");
        eprintln!(
            "{} children generated in {generated:?}; written as CSV in {:?} more",
            rows.len(),
            started.elapsed() - generated
        );
    }
}
