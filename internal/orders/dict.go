package orders

// dictV1 is the preset dictionary (RFC 1951's; Go's flate.NewWriterDict)
// that the stored forms docStaticV1 and docFlateV1 (stored.go) compress a
// record's JSON against: the text a match may point back into before the
// record's own bytes. It was written once, by hand, from the JSON of
// records as the pipeline writes them (`go run ./cmd/bench -only memory`)
// as encodeRecord compresses them (version 0, provider and outOrderId
// ""), with every value of the order's own blanked (names, address, ids,
// times down to their "20", amounts to 1): first the fields and words such
// records do not hold but others do (an error, rejected lines, decisions,
// deliveries, totals, the other states and notes), then an ended order,
// then, closest to the records (the nearer a match, the fewer its bits),
// an order in flight and the rest of the happy path's history. Field names
// are in the order encoding/json writes them. Nothing of the bench's own
// orders is in it (its address, amounts, ids); its few provider words
// ("general", "fxassure", "+86") are 1688's and China's.
//
// NEVER change it once deployed: every record written with it would no
// longer read (TestStoredFormsV1AreUnchanged pins it). A better dictionary
// is a new one with new marker bytes, the old kept for the records written
// with it.
const dictV1 = `{"code":"RETRIES_EXHAUSTED","message":"","total":"","maxTotal":""},"rejected":[{"productId":1,` +
	`"skuId":"","code":"NOT_IN_ORDER","message":""}],"adopted":true,"linesChecked":true,` +
	`"deadlineLive":true,"cancelRequested":true,"cancelFor":"DEADLINE","cancelRefused":"",` +
	`"cancelDone":true,"clearedAt":"20","clearedAttempts":1,"createFailures":1,"notified":1,` +
	`"deliveries":[{"at":"20","seq":1,"status":200,"error":""}],"totals":[{"at":"20",` +
	`"source":"preview","total":1},{"at":"20","source":"poll","total":1}],"pollStep":1,` +
	`"trackStep":1,"event":"decision","actor":"","action":"retry","reason":""},{"state":"needs_review",` +
	`"at":"20","event":"price_changed","note":""},{"state":"cancelled","at":"20","note":"cancel"},` +
	`{"state":"failed","at":"20","note":"PRICE_GUARD"},{"state":"expired","at":"20","note":"DEADLINE"},` +
	`{"state":"terminated","at":"20","note":"terminated"},{"state":"rejected","at":"20",` +
	`"note":""},"maxTotal":"","callbackUrl":"https://","state":"completed","providerOrderIds":[""],` +
	`"quote":{"goods":1,"freight":1,"service":1,"total":1,"lines":[{"productId":1,"skuId":"",` +
	`"quantity":1,"unitPrice":1,"amount":1}],"tradeType":"fxassure"},"rawStatus":"success",` +
	`"providerState":"completed","parcels":[{"orderId":"","carrier":"","billNo":"","status":"SIGN",` +
	`"done":true,"delivered":true}],"delivered":true,"createAttempts":1,"createSentAt":"20",` +
	`"trackDone":true,"pollSeq":2,"trackSeq":1,"quotedAt":"20","receivedAt":"20","updatedAt":"20",` +
	`"deadline":"20","history":[{"state":"received","at":"20"},{"state":"previewed","at":"20"},` +
	`{"state":"created","at":"20"},{"state":"shipped","at":"20","note":"waitbuyerreceive"},` +
	`{"state":"delivered","at":"20","note":"SIGN"},{"state":"completed","at":"20","note":"success"}]}` +
	"\n" +
	`{"version":0,"provider":"","outOrderId":"","request":{"provider":"","outOrderId":"",` +
	`"address":{"fullName":"","phone":"+86 1","mobile":"1","country":"CN","province":"",` +
	`"city":"","district":"","town":"","address":"","postCode":"","districtCode":""},` +
	`"items":[{"productId":1,"skuId":"","quantity":1}],"options":{"flow":"general"}},` +
	`"state":"awaiting_payment","providerOrderIds":[""],"quote":{"goods":1,"freight":1,` +
	`"service":1,"total":1,"lines":[{"productId":1,"skuId":"","quantity":1,"unitPrice":1,` +
	`"amount":1}],"previewId":""},"rawStatus":"waitbuyerpay","providerState":"awaiting_payment",` +
	`"createAttempts":1,"createSentAt":"20","pollSeq":1,"quotedAt":"20","receivedAt":"20",` +
	`"updatedAt":"20","deadline":"20","history":[{"state":"received","at":"20"},{"state":"previewed",` +
	`"at":"20"},{"state":"created","at":"20"},{"state":"awaiting_payment","at":"20","note":"waitbuyerpay"},` +
	`{"state":"paid","at":"20","note":"waitsellersend"},{"state":"shipped","at":"20",` +
	`"note":"waitbuyerreceive"},{"state":"delivered","at":"20","note":"confirm_goods"},` +
	`{"state":"completed","at":"20","note":"success"}]}` +
	"\n"

// staticLengthsV1 are the lengths of the codes of docStaticV1 (deflate.go)
// in hex: the 286 literal/length codes, then the 30 distance codes. They
// were made once by TestGenerateStaticLengths (static_gen_test.go), from
// the symbols encodeStatic writes for 4,000 records of a bench run, every
// symbol counted once more so that any input can be coded. NEVER change
// them once deployed (TestStoredFormsV1AreUnchanged pins them); encodeStatic
// itself may change, as long as it writes DEFLATE with this code.
const staticLengthsV1 = "ffffffffffffffffffffffffffffffff6f8fffffffffc76f44445555457ffbffcdfdf8ff8ffd7fb99f8f7d9d885ffffdf7cb87ff668ffff7cffcb7cc8f8ffffffabffffbfbffbfbbfffbffabfbfbbabbfbbfbbfffffffbbbbbfffbf9aabffffbffffffffffffffffffffffffffffffffffffb98baaffffffffffffffffffffff866768876655755676c8c9a7ffeeee6cdee6e65945574547851647aeeedd"
