//! The synthetic Traditional-Chinese QA set: the embedded default dataset of `make demo`
//! and of every test that needs training data.
//!
//! Articles are biographies of invented people, portraits of invented towns and histories of
//! invented organisations, each in three paragraphs. Every fact sentence carries one answer
//! (a person, place, year, date, number or organisation); questions come from 26 templates
//! written by us, phrased differently from the sentences they ask about. Each paragraph also
//! holds distractor sentences: the same kinds of facts about *other* people, towns and
//! organisations, so a model must match the question's subject, not just the answer type.
//! That makes the set learnable by a tiny model in minutes while leaving room for
//! hyperparameters to matter.
//!
//! The output is a pure function of (questions, seed): same arguments, same bytes.

use serde::Serialize;

use crate::rng::SplitMix64;

const SURNAMES: &[&str] = &[
    "陳", "林", "黃", "張", "李", "王", "吳", "劉", "蔡", "楊", "許", "鄭", "謝", "郭", "洪", "曾",
    "邱", "廖", "賴", "周", "徐", "蘇", "葉", "莊", "呂", "江", "何", "蕭", "羅", "高",
];
const GIVEN: &[&str] = &[
    "志", "明", "美", "玲", "建", "國", "家", "豪", "淑", "芬", "俊", "傑", "雅", "婷", "宗", "翰",
    "怡", "君", "文", "華", "永", "成", "嘉", "慧", "正", "德", "信", "宏", "欣", "宇", "佳", "穎",
    "冠", "廷", "詩", "涵",
];
const CITIES: &[&str] = &[
    "臺北",
    "臺中",
    "高雄",
    "臺南",
    "新竹",
    "嘉義",
    "花蓮",
    "臺東",
    "基隆",
    "宜蘭",
    "屏東",
    "苗栗",
    "彰化",
    "南投",
    "雲林",
    "桃園",
    "香港",
    "澳門",
    "上海",
    "廈門",
    "東京",
    "大阪",
    "首爾",
    "新加坡",
    "倫敦",
    "巴黎",
    "柏林",
    "紐約",
    "波士頓",
    "溫哥華",
    "雪梨",
    "維也納",
];
const TOWN_FIRST: &[&str] = &[
    "青", "白", "石", "金", "東", "西", "南", "北", "大", "小", "新", "平", "長", "安", "清", "龍",
];
const TOWN_SECOND: &[&str] = &[
    "山", "水", "河", "湖", "林", "田", "港", "橋", "溪", "峰", "原", "泉",
];
const TOWN_SUFFIX: &[&str] = &["鎮", "鄉", "市"];
const ORG_PREFIX: &[&str] = &[
    "中華",
    "東亞",
    "太平洋",
    "環球",
    "遠東",
    "新興",
    "聯合",
    "大同",
    "永豐",
    "光明",
    "宏達",
    "長榮",
];
const ORG_DOMAIN: &[&str] = &[
    "科技", "電子", "航運", "銀行", "出版", "建設", "生技", "食品", "紡織", "鋼鐵", "化工", "能源",
];
const ORG_KIND: &[&str] = &["公司", "集團", "協會", "研究所", "基金會"];
const PROFESSIONS: &[&str] = &[
    "作家",
    "畫家",
    "工程師",
    "醫師",
    "教師",
    "音樂家",
    "建築師",
    "律師",
    "商人",
    "記者",
    "農夫",
    "木匠",
];
const AWARDS: &[&str] = &[
    "金鼎獎",
    "金曲獎",
    "國家文藝獎",
    "金馬獎",
    "行政院文化獎",
    "吳三連獎",
    "金鐘獎",
    "傑出青年獎",
];
const BOOK_A: &[&str] = &[
    "春", "秋", "海", "山", "夜", "雨", "風", "月", "雪", "夢", "光", "城",
];
const BOOK_B: &[&str] = &[
    "之歌",
    "的故事",
    "紀事",
    "物語",
    "筆記",
    "之旅",
    "的記憶",
    "長河",
];
const PRODUCTS: &[&str] = &[
    "半導體",
    "貨櫃船",
    "罐頭",
    "紙張",
    "水泥",
    "疫苗",
    "布料",
    "鋼板",
    "太陽能板",
    "電池",
    "醬油",
    "茶葉",
];
const FILLERS: &[&str] = &[
    "當地以溫泉與夜市聞名。",
    "這段經歷後來常被人們提起。",
    "許多遊客每年慕名而來。",
    "相關的史料至今仍保存完整。",
    "此事在當時引起不少討論。",
    "附近的山區常有雲霧繚繞。",
    "這一時期的資料並不多。",
    "學者對此看法不一。",
];

/// One fact sentence: `before + answer + after`, with the question that asks for `answer`.
struct Fact {
    before: String,
    answer: String,
    after: String,
    question: String,
}

fn fact(before: String, answer: String, after: &str, question: String) -> Fact {
    Fact {
        before,
        answer,
        after: after.to_string(),
        question,
    }
}

struct Names<'r> {
    rng: &'r mut SplitMix64,
}

impl Names<'_> {
    fn person(&mut self) -> String {
        let s = *self.rng.pick(SURNAMES);
        let a = *self.rng.pick(GIVEN);
        let b = *self.rng.pick(GIVEN);
        format!("{s}{a}{b}")
    }
    fn city(&mut self) -> String {
        self.rng.pick(CITIES).to_string()
    }
    fn town(&mut self) -> String {
        format!(
            "{}{}{}",
            self.rng.pick(TOWN_FIRST),
            self.rng.pick(TOWN_SECOND),
            self.rng.pick(TOWN_SUFFIX)
        )
    }
    fn org(&mut self) -> String {
        format!(
            "{}{}{}",
            self.rng.pick(ORG_PREFIX),
            self.rng.pick(ORG_DOMAIN),
            self.rng.pick(ORG_KIND)
        )
    }
    fn year(&mut self, lo: u32, hi: u32) -> String {
        format!("{}年", self.rng.range(lo, hi))
    }
    fn date(&mut self, lo: u32, hi: u32) -> String {
        format!(
            "{}年{}月{}日",
            self.rng.range(lo, hi),
            self.rng.range(1, 12),
            self.rng.range(1, 28)
        )
    }
    fn book(&mut self) -> String {
        format!("《{}{}》", self.rng.pick(BOOK_A), self.rng.pick(BOOK_B))
    }
    fn pick(&mut self, items: &[&str]) -> String {
        self.rng.pick(items).to_string()
    }
    fn num(&mut self, lo: u32, hi: u32, unit: &str) -> String {
        format!("{}{unit}", self.rng.range(lo, hi))
    }
}

/// The three paragraphs of facts about a person (templates 1–12).
fn person_facts(n: &mut Names, p: &str) -> [Vec<Fact>; 3] {
    let early = vec![
        fact(
            format!("{p}出生於"),
            n.city(),
            "的一個小康家庭。",
            format!("{p}是在哪一座城市出生的？"),
        ),
        fact(
            format!("{p}生於"),
            n.year(1850, 1990),
            "，是家中的長子。",
            format!("{p}在哪一年出生？"),
        ),
        fact(
            format!("{p}的父親是一位"),
            n.pick(PROFESSIONS),
            "，對子女影響很深。",
            format!("{p}的父親從事什麼工作？"),
        ),
        fact(
            format!("{p}後來考入"),
            format!("國立{}大學", n.city()),
            "就讀。",
            format!("{p}曾經在哪一所大學念書？"),
        ),
    ];
    let career = vec![
        fact(
            format!("{p}於"),
            n.year(1870, 2010),
            "加入了報社工作。",
            format!("{p}哪一年開始在報社任職？"),
        ),
        fact(
            format!("其後{p}創辦了"),
            n.org(),
            "，並擔任首任負責人。",
            format!("{p}一手建立的機構叫什麼名字？"),
        ),
        fact(
            format!("{p}最著名的作品是"),
            n.book(),
            "，曾多次再版。",
            format!("{p}的代表作品為何？"),
        ),
        fact(
            format!("{p}曾獲頒"),
            n.pick(AWARDS),
            "的肯定。",
            format!("{p}得過哪一個獎？"),
        ),
    ];
    let later = vec![
        fact(
            format!("晚年{p}移居"),
            n.city(),
            "，專心寫作。",
            format!("{p}晚年搬到了哪裡？"),
        ),
        fact(
            format!("{p}享壽"),
            n.num(60, 99, "歲"),
            "，安葬於故鄉。",
            format!("{p}活到幾歲？"),
        ),
        fact(
            format!("{p}一生共發表"),
            n.num(12, 480, "篇"),
            "文章。",
            format!("{p}總共寫了多少篇文章？"),
        ),
        fact(
            format!("{p}逝世於"),
            n.date(1900, 2020),
            "。",
            format!("{p}是在哪一天過世的？"),
        ),
    ];
    [early, career, later]
}

/// The three paragraphs of facts about a town (templates 13–20).
fn town_facts(n: &mut Names, t: &str) -> [Vec<Fact>; 3] {
    let history = vec![
        fact(
            format!("{t}始建於"),
            n.year(1600, 1950),
            "，最初是一個漁村。",
            format!("{t}是在哪一年建立的？"),
        ),
        fact(
            format!("據統計，{t}的人口約有"),
            n.num(2, 90, "萬人"),
            "。",
            format!("{t}大約住了多少人？"),
        ),
        fact(
            format!("{t}的總面積為"),
            n.num(30, 900, "平方公里"),
            "。",
            format!("{t}的土地有多大？"),
        ),
    ];
    let geography = vec![
        fact(
            format!("{t}境內最高的山是"),
            format!("{}{}山", n.pick(TOWN_FIRST), n.pick(TOWN_FIRST)),
            "。",
            format!("{t}最高的山叫什麼？"),
        ),
        fact(
            format!("{t}最高峰海拔"),
            n.num(800, 3952, "公尺"),
            "，冬季偶爾降雪。",
            format!("{t}最高峰有多高？"),
        ),
        fact(
            format!("流經{t}的主要河流是"),
            format!("{}{}溪", n.pick(TOWN_FIRST), n.pick(TOWN_SECOND)),
            "。",
            format!("哪一條河流過{t}？"),
        ),
    ];
    let today = vec![
        fact(
            format!("{t}與"),
            n.city(),
            "締結為姊妹市。",
            format!("{t}的姊妹市是哪一座城市？"),
        ),
        fact(
            String::new(),
            n.org(),
            format!("的總部設在{t}。").as_str(),
            format!("哪一個機構把總部設在{t}？"),
        ),
        fact(
            format!("{t}的現任首長是"),
            n.person(),
            "。",
            format!("目前是誰擔任{t}的首長？"),
        ),
    ];
    [history, geography, today]
}

/// The three paragraphs of facts about an organisation (templates 21–26).
fn org_facts(n: &mut Names, o: &str) -> [Vec<Fact>; 3] {
    let founding = vec![
        fact(
            format!("{o}由"),
            n.person(),
            "創立。",
            format!("{o}的創辦人是誰？"),
        ),
        fact(
            format!("{o}正式成立於"),
            n.date(1880, 2015),
            "。",
            format!("{o}是哪一天成立的？"),
        ),
    ];
    let operations = vec![
        fact(
            format!("{o}的總部位於"),
            n.city(),
            "。",
            format!("{o}的總部在哪一座城市？"),
        ),
        fact(
            format!("{o}目前僱用了"),
            n.num(40, 9000, "名"),
            "員工。",
            format!("{o}現在有多少員工？"),
        ),
        fact(
            format!("{o}主要生產"),
            n.pick(PRODUCTS),
            "，產品銷往各地。",
            format!("{o}的主要產品是什麼？"),
        ),
    ];
    let leadership = vec![
        fact(
            format!("{o}的現任董事長為"),
            n.person(),
            "。",
            format!("誰是{o}目前的董事長？"),
        ),
        fact(
            format!("{o}在"),
            n.year(1900, 2020),
            "首次公開發行股票。",
            format!("{o}哪一年上市？"),
        ),
    ];
    [founding, operations, leadership]
}

#[derive(Debug, Serialize)]
struct OutFile {
    version: &'static str,
    data: Vec<OutArticle>,
}

#[derive(Debug, Serialize)]
struct OutArticle {
    title: String,
    id: String,
    paragraphs: Vec<OutParagraph>,
}

#[derive(Debug, Serialize)]
struct OutParagraph {
    context: String,
    id: String,
    qas: Vec<OutQa>,
}

#[derive(Debug, Serialize)]
struct OutQa {
    id: String,
    question: String,
    answers: Vec<OutAnswer>,
}

#[derive(Debug, Serialize)]
struct OutAnswer {
    id: String,
    text: String,
    answer_start: usize,
}

/// Builds a paragraph: the subject's facts (each asked) and distractor facts about another
/// subject of the same kind (never asked), in random order, plus a filler sentence.
fn paragraph(
    rng: &mut SplitMix64,
    facts: Vec<Fact>,
    distractors: Vec<Fact>,
    ids: (&str, usize),
) -> OutParagraph {
    let (article_id, p_index) = ids;
    let mut items: Vec<(Fact, bool)> = facts.into_iter().map(|f| (f, true)).collect();
    let n_distractors = 1 + rng.below(2);
    items.extend(
        distractors
            .into_iter()
            .take(n_distractors)
            .map(|f| (f, false)),
    );
    let filler = Fact {
        before: rng.pick(FILLERS).to_string(),
        answer: String::new(),
        after: String::new(),
        question: String::new(),
    };
    items.push((filler, false));
    rng.shuffle(&mut items);

    let id = format!("{article_id}-{p_index}");
    let mut context = String::new();
    let mut chars = 0usize;
    let mut qas = Vec::new();
    for (f, asked) in items {
        let start = chars + f.before.chars().count();
        if asked {
            qas.push(OutQa {
                id: format!("{id}-{}", qas.len() + 1),
                question: f.question,
                answers: vec![OutAnswer {
                    id: "1".into(),
                    text: f.answer.clone(),
                    answer_start: start,
                }],
            });
        }
        for part in [&f.before, &f.answer, &f.after] {
            context.push_str(part);
            chars += part.chars().count();
        }
    }
    OutParagraph { context, id, qas }
}

/// Generates at least `questions` questions (whole articles, then trimmed to exactly
/// `questions`) as a SQuAD-format JSON string.
pub fn generate(questions: usize, seed: u64) -> String {
    let mut rng = SplitMix64::new(seed ^ 0x5159_5357_4545_5000);
    let mut articles = Vec::new();
    let mut total = 0usize;
    let mut article_no = 0usize;
    while total < questions {
        let kind = article_no % 3;
        let article_id = (1000 + article_no).to_string();
        let (title, facts, distractors) = {
            let mut n = Names { rng: &mut rng };
            match kind {
                0 => {
                    let (s, d) = (n.person(), n.person());
                    (
                        s.clone(),
                        person_facts(&mut n, &s),
                        person_facts(&mut n, &d),
                    )
                }
                1 => {
                    let (s, d) = (n.town(), n.town());
                    (s.clone(), town_facts(&mut n, &s), town_facts(&mut n, &d))
                }
                _ => {
                    let (s, d) = (n.org(), n.org());
                    (s.clone(), org_facts(&mut n, &s), org_facts(&mut n, &d))
                }
            }
        };
        let mut paragraphs = Vec::new();
        for (i, (f, mut d)) in facts.into_iter().zip(distractors).enumerate() {
            rng.shuffle(&mut d);
            let mut p = paragraph(&mut rng, f, d, (&article_id, i + 1));
            let room = questions - total;
            p.qas.truncate(room);
            total += p.qas.len();
            if !p.qas.is_empty() {
                paragraphs.push(p);
            }
        }
        articles.push(OutArticle {
            title,
            id: article_id,
            paragraphs,
        });
        article_no += 1;
    }
    let file = OutFile {
        version: "qa-sweep-synthetic-1",
        data: articles,
    };
    serde_json::to_string(&file).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::squad::Dataset;

    #[test]
    fn is_deterministic_exact_and_valid() {
        let a = generate(200, 7);
        assert_eq!(a, generate(200, 7));
        assert_ne!(a, generate(200, 8));
        let ds = Dataset::from_json_bytes(Path::new("synth.json"), a.as_bytes()).unwrap();
        assert_eq!(ds.examples.len(), 200);
        // Every answer_start points at its text: nothing repaired, nothing dropped.
        assert_eq!(ds.report.repaired_answer_starts, 0);
        assert_eq!(ds.report.unlocatable_answers, 0);
        assert!(ds.examples[0].id.starts_with("1000-1-"));
    }

    #[test]
    fn uses_at_least_twenty_templates() {
        let ds = Dataset::from_json_bytes(Path::new("s"), generate(600, 1).as_bytes()).unwrap();
        // A template is the question with its subject removed.
        let mut templates = std::collections::HashSet::new();
        for ex in &ds.examples {
            let title = &ds.paragraphs[ex.paragraph].title;
            templates.insert(ex.question.replace(title.as_str(), "X"));
        }
        assert!(templates.len() >= 20, "{} templates", templates.len());
    }
}
