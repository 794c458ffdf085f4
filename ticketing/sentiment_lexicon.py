"""Hand-written Chinese + English lexicons and prototype sentences for :mod:`ticketing.sentiment`.

Everything here was written by hand for this project (no entries or sentences are taken from any
evaluation set). Plain data only: the scorer compiles it lazily on first use.

Conventions
- Polar terms map to a weight (1.0 = ordinary, 2.0 = strong). Chinese terms match as substrings
  (longest match wins, so "不错" is one positive term and never "错"); English terms match whole
  words on lower-cased text.
- Negators flip a polar term that follows them in the same clause ("不满意", "not good");
  a negated negative counts only weakly positive ("不差" is faint praise).
- Escalation threats, safety terms and sarcasm cues map to the canonical label used in reasons.
"""

from __future__ import annotations


def _w(words: str, weight: float = 1.0) -> dict[str, float]:
    return {word: weight for word in words.split()}


# --- polar words -------------------------------------------------------------------------------

NEGATIVE_ZH: dict[str, float] = {
    **_w(
        """差 不好 不行 不满 失望 后悔 糟糕 问题 毛病 故障 坏了 破了 破损 损坏 漏了 漏水 裂了 断了 掉色 褪色
        起球 开线 脱线 变形 生锈 发霉 异味 臭 难闻 刺鼻 难吃 难喝 难看 难用 不好用 不好吃 不合适 不舒服
        不值 不值得 不新鲜 不灵 不准 不正 不对 不符 不一致 不能用 用不了 打不开 开不了机 充不进 连不上
        死机 卡顿 很卡 太卡 发热 发烫 慢 太慢 很慢 超慢 迟到 延误 晚点 退货 退款 换货 补发 少发 漏发 错发
        发错 送错 没收到 丢件 丢了 缺货 假货 仿冒 山寨 劣质 次品 残次 瑕疵 划痕 污渍 脏 旧 二手 翻新
        贵 偏贵 太贵 不划算 坑 被坑 忽悠 敷衍 推脱 推诿 拖延 态度差 态度不好 不理人 不回复 没人理 没人管
        麻烦 折腾 费劲 烦 烦人 心累 无奈 郁闷 难过 伤心 痛苦 委屈 崩溃 哭了 想哭 担心 害怕 焦虑 可惜
        遗憾 无语 无聊 一般般 凑合 将就 勉强 不如 缩水 偷工减料 以次充好 虚假 欺骗 夸大 货不对板
        不理想 不推荐 不建议 别买 不会再 再也不 差评 退了 吵 噪音 潮湿 霉味 蟑螂 虫子 头发 小 硬 薄
        凉了 冷了 洒了 漏汤 少了 咸 太咸 太淡 太油 油腻 生的 没熟 夹生 馊 变质 过期 临期 """
    ),
    **_w(
        """太差 很差 极差 超差 差劲 最差 垃圾 恶心 骗子 骗人 坑人 坑爹 黑心 奸商 上当 烂 稀烂 太烂
        质量差 质量太差 做工差 服务差 太失望 非常失望 很失望 大失望 不要买 千万别买 千万不要 坑货
        后悔死了 气死 坑死 差到极点 一星 退钱 骗钱 """,
        2.0,
    ),
    **_w("退货 退款 换货 补发 问题", 0.5),
}

POSITIVE_ZH: dict[str, float] = {
    **_w(
        """不错 挺好 很好 真好 好用 好吃 好喝 好看 好评 满意 喜欢 推荐 值得 划算 实惠 便宜 物美价廉 性价比高
        方便 舒服 舒适 漂亮 美观 精致 结实 耐用 清晰 流畅 快速 迅速 很快 及时 准时 新鲜 干净 整洁 安静
        正品 热情 周到 耐心 贴心 细心 专业 负责 靠谱 给力 满分 完美 优秀 棒 赞 感谢 谢谢 开心 高兴 愉快
        惊喜 放心 省心 喜爱 爱了 回购 再来 还会 下次还 好好 可口 香 入味 分量足 实在 到位 合适 合身 舒心
        温馨 宽敞 大气 有质感 好评如潮 点赞 非常好 特别好 超好 很棒 太棒了 相当好 物超所值 五星 """
    ),
    **_w("""非常满意 很满意 十分满意 超级满意 强烈推荐 值得购买 值得推荐 非常喜欢 很喜欢 超赞 太好了""", 2.0),
}

NEGATIVE_EN: dict[str, float] = {
    **_w(
        """bad poor broken damaged defective faulty wrong missing lost late delay delayed delays slow cancel
        cancelled canceled cancellation stuck stranded problem problems issue issues fail failed failure fails
        error refund return complaint complain complaining disappointed disappointing disappointment unhappy
        sad upset annoyed annoying frustrated frustrating frustration worried confused unacceptable rude
        unhelpful useless worse cheap cheaply overpriced expensive dirty smelly uncomfortable cramped noisy
        leak leaking cracked scratched stained ripped torn fake counterfeit never nobody nothing waiting
        waited hold wait sucks suck hate hated terrible horrible awful worst pathetic ridiculous disgusting
        incompetent joke fail mess misleading scam lied lie lies lying stole stolen sorry apologize trouble
        difficult hassle nightmare rip-off ripoff regret poorly mediocre meh lousy shoddy flimsy unreliable
        inconvenient unprofessional ignored ignoring ignore bumped overbooked missed miss diverted hungry
        tired exhausted angry mad furious pissed"""
    ),
    **_w("""worst terrible horrible awful disgusting pathetic unacceptable scam nightmare hate furious""", 2.0),
    **_w("refund return wait waiting waited hold", 0.5),
}

POSITIVE_EN: dict[str, float] = {
    **_w(
        """good great excellent amazing awesome fantastic wonderful perfect love loved loves lovely nice
        happy glad pleased satisfied thank thanks thx appreciate appreciated helpful friendly kind fast quick
        quickly smooth easy comfortable clean fresh beautiful best recommend recommended worth impressed
        impressive enjoy enjoyed fun cool brilliant superb outstanding professional reliable solid works
        worked fixed resolved delicious tasty cheers yay kudos congrats congratulations welcome safe
        courteous pleasant excited"""
    ),
    **_w("""excellent amazing awesome fantastic outstanding superb perfect""", 1.5),
}

# Anger and insults (also count as negative); strong words 2.0.
ANGER_ZH: dict[str, float] = {
    **_w(
        """生气 气愤 愤怒 火大 恼火 发火 来气 气人 可恶 讨厌 烦死 受不了 忍不了 无语 服了 呵呵 什么玩意
        什么东西 搞什么 搞什么鬼 凭什么 有病 鄙视 恶心 坑人 骗子 骗人 黑心 奸商 无良 不要脸 脸皮 流氓
        强盗 吃屎 去死 滚 混蛋 王八蛋 混账 废物 垃圾 智障 脑残 白痴 傻 神经病 耍我 耍人 糊弄 欺负 岂有此理
        太过分 过分 离谱 忍无可忍 气死我了 气炸 找死 [怒] [抓狂] [鄙视] [生气] 😡 🤬 😠 💢""",
    ),
    **_w("""他妈 妈的 tmd 尼玛 卧槽 我靠 操 傻逼 傻b sb 狗屎 去你的 滚蛋 艹 靠""", 2.0),
}

ANGER_EN: dict[str, float] = {
    **_w(
        """angry furious livid outraged outrageous mad pissed fuming disgusted disgusting unacceptable ridiculous
        pathetic incompetent idiots idiot morons moron clowns liar liars scam scammers thieves thief shameful
        disgrace disgraceful insulting rude worst hate hell wtf wth seriously ugh joke"""
    ),
    **_w("""fuck fucking fucked shit shitty bullshit damn damned crap crappy screw screwed""", 2.0),
}

NEGATORS_ZH = (
    "不",
    "没",
    "没有",
    "别",
    "无",
    "未",
    "非",
    "毫不",
    "并不",
    "从不",
    "不太",
    "不是很",
    "不够",
    "不怎么",
    "缺乏",
)
NEGATORS_EN = frozenset(
    [
        "not",
        "no",
        "never",
        "none",
        "nobody",
        "nothing",
        "neither",
        "nor",
        "without",
        "hardly",
        "barely",
        "cannot",
        "cant",
        "can't",
        "don't",
        "dont",
        "doesn't",
        "doesnt",
        "didn't",
        "didnt",
        "isn't",
        "isnt",
        "wasn't",
        "wasnt",
        "aren't",
        "arent",
        "weren't",
        "werent",
        "won't",
        "wont",
        "wouldn't",
        "wouldnt",
        "shouldn't",
        "couldn't",
        "haven't",
        "havent",
        "hasn't",
        "hasnt",
        "hadn't",
        "lack",
        "lacking",
    ]
)
INTENSIFIERS_ZH = (
    "很",
    "非常",
    "太",
    "特别",
    "超级",
    "超",
    "极其",
    "极",
    "十分",
    "相当",
    "真",
    "真的",
    "实在",
    "巨",
    "贼",
    "最",
    "完全",
    "根本",
    "简直",
    "好",
)
INTENSIFIERS_EN = frozenset(
    [
        "very",
        "so",
        "really",
        "extremely",
        "totally",
        "absolutely",
        "completely",
        "utterly",
        "super",
        "incredibly",
        "truly",
        "too",
        "most",
        "beyond",
    ]
)
# A clause after a contrast word usually carries the verdict ("味道不错，但是送餐太慢").
CONTRAST_ZH = ("但是", "但", "可是", "不过", "然而", "就是", "只是", "可惜")
CONTRAST_EN = frozenset(["but", "however", "though", "although", "yet", "unfortunately"])

# --- escalation threats: term -> canonical label -------------------------------------------------

THREATS_ZH: dict[str, str] = {
    "12315": "12315 complaint",
    "315": "12315 complaint",
    "消协": "consumer association complaint",
    "消费者协会": "consumer association complaint",
    "工商": "regulator complaint (工商)",
    "市场监管": "regulator complaint (市场监管)",
    "质监": "regulator complaint (质监)",
    "投诉": "formal complaint (投诉)",
    "举报": "report to authorities (举报)",
    "差评": "negative review (差评)",
    "一星": "negative review (差评)",
    "律师": "legal action (律师)",
    "起诉": "legal action (起诉)",
    "法院": "legal action (法院)",
    "打官司": "legal action (打官司)",
    "维权": "legal action (维权)",
    "报警": "police report (报警)",
    "曝光": "media exposure (曝光)",
    "媒体": "media exposure (媒体)",
    "记者": "media exposure (记者)",
    "拒付": "chargeback (拒付)",
    "退单": "chargeback (退单)",
}
THREATS_EN: dict[str, str] = {
    "chargeback": "chargeback",
    "charge back": "chargeback",
    "dispute the charge": "chargeback",
    "dispute with my bank": "chargeback",
    "lawyer": "legal action",
    "attorney": "legal action",
    "lawsuit": "legal action",
    "sue": "legal action",
    "sue you": "legal action",
    "legal action": "legal action",
    "small claims": "legal action",
    "bbb": "regulator complaint",
    "better business bureau": "regulator complaint",
    "ftc": "regulator complaint",
    "consumer protection": "regulator complaint",
    "file a complaint": "formal complaint",
    "formal complaint": "formal complaint",
    "report you": "report to authorities",
    "media": "media exposure",
    "the press": "media exposure",
    "news": "media exposure",
    "go viral": "media exposure",
    "one star": "negative review",
    "1 star": "negative review",
    "1-star": "negative review",
    "bad review": "negative review",
    "negative review": "negative review",
}

# --- safety ------------------------------------------------------------------------------------

SAFETY_ZH: dict[str, str] = {
    **dict.fromkeys(
        ["冒烟", "起火", "着火", "失火", "烧起来", "烧焦", "焦味", "冒火花", "火花", "爆炸", "炸了", "自燃"],
        "fire/smoke hazard",
    ),
    **dict.fromkeys(["漏电", "触电", "电到", "电了一下", "短路"], "electrical hazard"),
    **dict.fromkeys(["烫伤", "烧伤", "灼伤"], "burn injury"),
    **dict.fromkeys(
        ["过敏", "红肿", "起疹子", "起红疹", "皮疹", "疹子", "瘙痒", "刺痛", "烂脸", "溃烂", "起泡"],
        "skin/allergic reaction",
    ),
    **dict.fromkeys(
        ["中毒", "食物中毒", "拉肚子", "腹泻", "呕吐", "上吐下泻", "吃坏肚子", "住院"], "illness/poisoning"
    ),
    **dict.fromkeys(["受伤", "划伤", "割伤", "砸伤", "流血", "窒息", "噎到"], "injury"),
}
SAFETY_EN: dict[str, str] = {
    "smoke came out": "fire/smoke hazard",
    "started smoking": "fire/smoke hazard",
    "caught fire": "fire/smoke hazard",
    "on fire": "fire/smoke hazard",
    "burning smell": "fire/smoke hazard",
    "sparks": "fire/smoke hazard",
    "exploded": "fire/smoke hazard",
    "electric shock": "electrical hazard",
    "electrocuted": "electrical hazard",
    "got shocked": "electrical hazard",
    "short circuit": "electrical hazard",
    "burned my": "burn injury",
    "burnt my": "burn injury",
    "scalded": "burn injury",
    "allergic reaction": "skin/allergic reaction",
    "allergic": "skin/allergic reaction",
    "rash": "skin/allergic reaction",
    "hives": "skin/allergic reaction",
    "swollen": "skin/allergic reaction",
    "blisters": "skin/allergic reaction",
    "food poisoning": "illness/poisoning",
    "got sick": "illness/poisoning",
    "vomiting": "illness/poisoning",
    "injured": "injury",
    "injury": "injury",
    "bleeding": "injury",
    "choking": "injury",
    "unsafe": "safety hazard",
    "safety hazard": "safety hazard",
    "fire hazard": "fire/smoke hazard",
}
# "smoking"/"smoked"/"shock" alone are too ambiguous in English ("smoking area", "shocked"); only phrases count.

# --- urgency -----------------------------------------------------------------------------------

URGENCY_ZH = tuple(
    [
        "急",
        "着急",
        "急用",
        "急需",
        "很急",
        "马上",
        "立刻",
        "立即",
        "尽快",
        "赶紧",
        "赶快",
        "快点",
        "今天必须",
        "等不了",
        "十万火急",
        "火速",
        "加急",
        "速度",
        "催",
    ]
)
URGENCY_EN = (
    "urgent",
    "urgently",
    "asap",
    "immediately",
    "right now",
    "right away",
    "emergency",
    "as soon as possible",
)

# --- patterns (regular expressions, compiled lazily by the scorer) ------------------------------

# Repeated failure: the same problem again, the n-th time, still not fixed.
REPEATED_FAILURE_PATTERNS = (
    r"第[二三四五六七八九十两几\d]+次",
    r"又(?:坏|错|漏|发错|送错|出问题|不行|没|是|来|延|晚|卡)",
    r"再次(?:出现|发生|坏|错)",
    r"还是(?:没|不行|不能|不好|坏|老样子)",
    r"一直(?:没|都没|都不(?!错)|不(?!错))",
    r"(?:多次|屡次|三番五次|好几次|几次三番|反复|每次都)",
    r"\b(?:again|third time|second time|3rd time|2nd time|yet again|once again|every time)\b",
    r"\bkeeps? (?:happening|breaking|failing)\b",
    r"\bstill (?:not|no|haven'?t|hasn'?t|hadn'?t|waiting|broken|nothing|don'?t|doesn'?t|didn'?t|can'?t)\b",
    r"\bfor the (?:\w+) time\b",
)
# Polite but angry: the customer has been waiting and asks how much longer.
WAITING_PATTERNS = (
    r"(?:已经|都)等了",
    r"等了(?:一|两|三|四|五|六|七|八|九|十|几|好几|半|\d+)\s*(?:个)?\s*(?:多)?(?:天|周|星期|礼拜|月|小时|钟头)",
    r"(?:还要|还得|要)等多久",
    r"(?:到底|究竟)(?:什么时候|要|还|有没有|怎么)",
    r"(?:怎么|为什么|为啥)还(?:没|不)",
    r"还没(?:有)?(?:收到|到|发货|退款|退|回复|处理|解决|给)",
    r"(?:迟迟|一直)(?:没|不|未)",
    r"没人(?:理|管|回复|回|处理|接)",
    r"催了",
    r"\b(?:been waiting|still waiting|waited|waiting for (?:over|more than|\d|an? |hours|days|weeks))",
    r"\b(?:how much longer|how long (?:do|does|will|must)|on hold for|hours? on hold)",
    r"\b(?:no (?:response|reply|answer)|nobody (?:answers|responds|replied|called))",
)
# Sarcasm: quoted praise, 呵呵-style cues, thank-you for a failure.
QUOTED_PRAISE_PATTERN = (
    r"[\"'“‘「『](?:太|真|很|好|非常)?(?:好|棒|快|优秀|贴心|负责|专业|靠谱|给力|高效|及时|周到|nice|great|good|"
    r"helpful|fast|quick|amazing|excellent|wonderful|awesome)(?:了|的)?[\"'”’」』]"
)
# Chinese sarcasm cues. "呵呵" counts on its own; the others ("真是谢谢", "真行") are also said sincerely,
# so they count only when the message carries negative evidence as well.
SARCASM_STRONG_ZH = ("呵呵", "呵呵哒", "服了你们", "真有你们的")
SARCASM_CUES_ZH = (
    "真是谢谢",
    "谢谢你们了",
    "太感谢你们了",
    "真行",
    "佩服佩服",
    "好一个",
    "真是好样的",
    "真够可以",
    "可真行",
    "真是太好了",
    "真是好",
)
# Phrases that contain a negator character but do not negate what follows ("不过很好", "没想到这么好").
NEGATION_EXCEPTIONS_ZH = (
    "不过",
    "不管",
    "不少",
    "不久",
    "不断",
    "不仅",
    "不但",
    "差不多",
    "不错",
    "没想到",
    "无论",
    "非常",
)
# Phrases that contain a polar character but carry no polarity; matching them consumes the characters.
NEUTRAL_ZH = ("差不多", "好像", "好几", "好多", "问题不大", "好不好", "慢慢", "小时", "小哥", "小区", "小心", "旧版")
SARCASM_PATTERNS_EN = (
    r"\b(?:great|wonderful|perfect|fantastic|awesome|nice|brilliant|lovely),? (?:another|again|just what i needed)\b",
    r"\b(?:thanks|thank you) (?:for nothing|a lot for nothing|for ruining)\b",
    r"\b(?:love|loving) (?:how|that|being|it when|the fact)\b",
    r"\bso much for\b",
    r"\byeah,? right\b",
    r"\boh,? (?:great|joy|good)\b",
    r"\bjust great\b",
    r"\bway to go\b",
    r"\bgood job\b.*\b(?:not|never|again|lost|late|delay)",
    r"(?:^|\s)/s\b",
)

# --- prototype sentences (hand-written) ---------------------------------------------------------

NEGATIVE_PROTOTYPES: tuple[str, ...] = (
    "质量太差了，用了两天就坏了",
    "和图片完全不一样，很失望",
    "东西收到是坏的，包装也破了",
    "发错货了，我买的不是这个颜色",
    "快递太慢了，一个星期才到",
    "尺码不对，穿着很不舒服",
    "味道很怪，闻着有股刺鼻的味道",
    "客服一直不回复，问题也没解决",
    "退款申请了好几天还没到账",
    "说好的赠品没有收到",
    "屏幕有划痕，明显是二手的",
    "充不进电，开不了机",
    "衣服洗了一次就掉色缩水了",
    "外卖送到都凉了，汤也洒了",
    "菜太咸了，分量还少",
    "房间很旧，隔音差，晚上很吵",
    "水果烂了好几个，不新鲜",
    "价格比别家贵，性价比很低",
    "用了之后皮肤发红发痒",
    "不推荐购买，后悔了",
    "The product broke after two days.",
    "It arrived damaged and the box was crushed.",
    "I received the wrong item and nobody is helping me.",
    "My order is late again and there is no update.",
    "The quality is really poor, very disappointed.",
    "Still waiting for my refund after three weeks.",
    "The flight was delayed for hours and we missed our connection.",
    "They lost my luggage and customer service is useless.",
    "The size is wrong and it does not fit at all.",
    "It stopped working and the replacement is broken too.",
    "Terrible experience, I will not order again.",
    "The food was cold and the delivery took forever.",
    "I was charged twice and can't get anyone on the phone.",
    "My flight got cancelled and I am stuck at the airport.",
    "The seat was broken and the staff didn't care.",
    "Not worth the money at all.",
)

ANGRY_PROTOTYPES: tuple[str, ...] = (
    "你们这是什么垃圾东西，气死我了！",
    "骗子商家，我要投诉你们！",
    "再不给我解决我就打12315！",
    "你们客服是死人吗？一直不回消息！",
    "我已经等了一个星期了，请问还要等多久？",
    "真是太好了，第三次发错货",
    "呵呵，这就是你们的服务态度",
    "什么破玩意，简直是坑人",
    "你们到底有没有人管？我要退款！",
    "太过分了，我要给差评，还要曝光你们",
    "说了多少遍了还是没人处理，忍无可忍",
    "黑心商家，卖假货，不要脸",
    "凭什么不给退？我要找律师起诉你们",
    "马上给我退钱，否则我去消协投诉",
    "你们是在耍我吗？",
    "烦死了，又坏了，这已经是第二次了",
    "THIS IS UNACCEPTABLE!!!",
    "This is the worst service I have ever had. I want my money back NOW.",
    "I am furious. Third time you sent the wrong item.",
    "Great, another delay. Thanks for nothing.",
    "Are you kidding me? Nobody has answered in five days!",
    "I'm filing a chargeback and reporting you to the BBB.",
    "You people are a joke. Absolutely pathetic.",
    "I will never fly with you again, what a disgrace!",
    "How hard is it to answer a simple question?!",
    "You lied to me about the refund. I'm contacting my lawyer.",
    "Worst airline ever, rude staff and zero help!!",
    "I've been on hold for two hours, this is ridiculous.",
    "Stop sending me useless scripted replies and fix it!",
    "Seriously? Cancelled again with no explanation?",
)

POSITIVE_PROTOTYPES: tuple[str, ...] = (
    "质量很好，和描述的一样，非常满意",
    "物流很快，第二天就到了",
    "客服态度很好，耐心解答问题",
    "衣服很合身，面料舒服，会回购",
    "味道不错，分量很足，好评",
    "包装很仔细，没有任何损坏",
    "性价比很高，推荐购买",
    "房间干净整洁，服务热情周到",
    "水果很新鲜，很甜",
    "用了一段时间了，效果不错",
    "谢谢客服，问题解决了",
    "宝贝收到了，很喜欢",
    "Great quality, exactly as described.",
    "Fast shipping and well packaged, thank you!",
    "The support team solved my problem quickly.",
    "Love it, works perfectly.",
    "Thanks for the help, the refund arrived.",
    "Friendly crew and a smooth flight, thank you.",
    "Very comfortable and fits well, would buy again.",
    "Excellent service, highly recommend.",
    "The food was delicious and arrived hot.",
    "Thank you so much for rebooking me so fast!",
)

NEUTRAL_PROTOTYPES: tuple[str, ...] = (
    "怎么退货？",
    "请问什么时候发货？",
    "可以开发票吗？",
    "这个有没有蓝色的？",
    "身高170穿什么码？",
    "快递用的是哪家？",
    "请问怎么修改收货地址？",
    "这款支持七天无理由退换吗？",
    "优惠券怎么用？",
    "在吗？想咨询一下",
    "这个充电器适用哪些型号？",
    "请帮我查一下订单物流",
    "How do I return an item?",
    "When will my order ship?",
    "Can I change the delivery address?",
    "Do you have this in a larger size?",
    "What is the baggage allowance for this flight?",
    "Is there a discount code for first orders?",
    "Can I get an invoice for my purchase?",
    "Please check the status of my order.",
    "Which airport terminal does the flight leave from?",
    "Hi, I have a question about my booking.",
)
