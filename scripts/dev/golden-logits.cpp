// Dev only: records llama.cpp's logits for a token sequence, and for MoE models the experts its
// router chose per layer and token, as JSON on stdout (hearth's architecture test bench compares
// against these; see scripts/dev/record-tiny-goldens.sh).
// Usage: golden-logits MODEL.gguf TOKEN,TOKEN,...
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

// Expert ids by layer, each a [token][slot] table, filled from the `ffn_moe_topk-N` tensors.
static std::map<int, std::vector<std::vector<int>>> g_experts;

static bool capture_topk(struct ggml_tensor * t, bool ask, void *) {
    const char * prefix = "ffn_moe_topk-";
    if (strncmp(t->name, prefix, strlen(prefix)) != 0) {
        return !ask;  // ask: not wanted; data: keep going
    }
    if (ask) {
        return true;
    }
    int layer = atoi(t->name + strlen(prefix));
    int64_t slots = t->ne[0], tokens = t->ne[1];
    // the top-k is a view of the argsort over all experts: rows are nb[1] bytes apart
    std::vector<int32_t> ids(slots * tokens);
    for (int64_t i = 0; i < tokens; i++) {
        ggml_backend_tensor_get(t, ids.data() + i * slots, i * t->nb[1], slots * sizeof(int32_t));
    }
    auto & table = g_experts[layer];
    table.assign(tokens, std::vector<int>(slots));
    for (int64_t i = 0; i < tokens; i++) {
        for (int64_t j = 0; j < slots; j++) {
            table[i][j] = ids[i * slots + j];
        }
    }
    return true;
}

int main(int argc, char ** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf TOKEN,TOKEN,...\n", argv[0]);
        return 2;
    }
    std::vector<llama_token> tokens;
    std::stringstream list(argv[2]);
    for (std::string item; std::getline(list, item, ',');) {
        tokens.push_back(atoi(item.c_str()));
    }
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = 512;
    cp.n_ubatch = 512;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    cp.cb_eval = capture_topk;
    cp.cb_eval_user_data = nullptr;
    llama_context * ctx = llama_init_from_model(model, cp);
    llama_batch batch = llama_batch_init((int32_t) tokens.size(), 0, 1);
    for (size_t i = 0; i < tokens.size(); i++) {
        batch.token[i] = tokens[i];
        batch.pos[i] = (llama_pos) i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = (int32_t) tokens.size();
    if (llama_decode(ctx, batch) != 0) {
        fprintf(stderr, "decode failed\n");
        return 1;
    }
    int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    printf("{\"tokens\": [");
    for (size_t i = 0; i < tokens.size(); i++) {
        printf("%s%d", i ? ", " : "", tokens[i]);
    }
    printf("],\n \"logits\": [");
    for (size_t i = 0; i < tokens.size(); i++) {
        const float * row = llama_get_logits_ith(ctx, (int32_t) i);
        printf("%s\n  [", i ? "," : "");
        for (int v = 0; v < n_vocab; v++) {
            printf("%s%.7g", v ? ", " : "", row[v]);
        }
        printf("]");
    }
    printf("],\n \"experts\": [");
    bool first = true;
    for (auto & [layer, table] : g_experts) {
        printf("%s\n  [", first ? "" : ",");
        first = false;
        for (size_t i = 0; i < table.size(); i++) {
            printf("%s[", i ? ", " : "");
            for (size_t j = 0; j < table[i].size(); j++) {
                printf("%s%d", j ? ", " : "", table[i][j]);
            }
            printf("]");
        }
        printf("]");
    }
    printf("]}\n");
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
